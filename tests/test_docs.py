"""Docs that cannot drift: every command has help text and is in the README, and the
README's two set-up commands are the ones the Makefile and CI run."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from alerts.cli import cli
from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def all_commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{path} ")


COMMANDS = dict(all_commands())


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_help_text(path: str) -> None:
    command = COMMANDS[path]
    assert command.help, f"'alerts {path}' has no help text"
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    "path", sorted(p for p, c in COMMANDS.items() if not isinstance(c, click.Group))
)
def test_every_command_is_in_the_readme(path: str) -> None:
    assert re.search(rf"alerts {re.escape(path)}\b", README), (
        f"README.md does not mention 'alerts {path}'"
    )


@pytest.mark.parametrize(
    "path", sorted(p for p, c in COMMANDS.items() if not isinstance(c, click.Group))
)
def test_every_command_takes_config(path: str) -> None:
    params = {opt for param in COMMANDS[path].params for opt in getattr(param, "opts", [])}
    assert "--config" in params, f"'alerts {path}' does not take --config"


def test_readme_names_the_two_setup_commands_that_ci_runs() -> None:
    assert "make run" in README and "make test" in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.MULTILINE), (
        ".ci/run must call the README's test command"
    )


def test_python_dash_m_alerts_is_the_same_cli() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "alerts", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "Area Alerts" in result.stdout
