"""Commands that read, change, export, erase or purge what exists never make a database
at a mistyped path: they stop with one line naming it (an empty list, or an erasure
"done" on a new empty file, would pass for the truth)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

COMMANDS = [
    ("subscribers", "erase", "ann@example.org", "--yes"),
    ("subscribers", "export-data", "ann@example.org"),
    ("purge",),
    ("subscribers", "list"),
    ("subscribers", "list", "--json"),
    ("subscribers", "export"),
    ("subscribers", "remove", "ann@example.org"),
    ("send",),
    ("digest", "--frequency", "daily"),
    ("preview", "--area", "medway", "--frequency", "daily"),
    ("feeds", "build"),
    ("advisories", "retag", "1", "--area", "medway"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_command_on_what_exists_never_creates_a_database_at_a_mistyped_path(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    typo = tmp_path / "vra" / "alerts.db"  # a mistyped 'var'
    config = write_config(database=f"sqlite:///{typo}")

    result = run_cli(*command, config=config)

    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: database: no database file {typo} (")
    assert result.stderr.count("\n") == 1
    assert not typo.parent.exists()


@pytest.mark.parametrize(
    "command",
    [("subscribers", "add", "ann@example.org", "--area", "medway"), ("ingest",)],
    ids=" ".join,
)
def test_a_command_that_brings_data_in_makes_the_database(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    new = tmp_path / "var" / "alerts.db"
    config = write_config(database=f"sqlite:///{new}")

    result = run_cli(*command, config=config)

    assert result.exit_code == 0, result.output
    assert new.is_file()
