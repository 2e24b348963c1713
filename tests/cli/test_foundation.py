"""The foundation commands end to end, in-process: alerts ingest, alerts advisories
list/show, --help everywhere without a config, exit statuses 0/1/2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from alerts.cli import cli, progress_bar
from alerts.cli.ingest import PROGRESS_FROM
from alerts.config import CONFIG_ENV
from tests.support import REPO, SAMPLE, make_database

Run = Callable[..., Result]
SAMPLE_URL = (
    "https://www.kent.police.uk/news/kent/news2/policing-news/2012/"
    "safety-advice-after-telephone-fraudster-poses-as-kent-police-officer/"
)


@pytest.fixture
def ingested(run_cli: Run) -> Run:
    assert run_cli("ingest").exit_code == 0
    return run_cli


# -- alerts ingest ---------------------------------------------------------------------------


def test_ingest_prints_the_summary_and_is_idempotent(run_cli: Run) -> None:
    first = run_cli("ingest")
    assert (first.exit_code, first.stdout) == (0, "1 new, 0 updated, 0 unchanged, 0 rejected\n")
    again = run_cli("ingest")
    assert (again.exit_code, again.stdout) == (0, "0 new, 0 updated, 1 unchanged, 0 rejected\n")


def test_ingest_paths_reports_bad_files_and_exits_1(run_cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text(
        "```yaml\ntitle: x\nurl: https://a.example/\npublish:\n  date: 14:30 31/02/2020\n```\n"
    )
    result = run_cli("ingest", str(SAMPLE), str(bad))
    assert result.exit_code == 1
    assert result.stdout == "1 new, 0 updated, 0 unchanged, 1 rejected\n"
    [line] = result.stderr.splitlines()
    assert line.startswith(f"rejected: {bad}:5: impossible date '14:30 31/02/2020'")
    assert "HH:MM DD/MM/YYYY" in line


def test_ingest_json(run_cli: Run, tmp_path: Path) -> None:
    undated = tmp_path / "undated.md"
    undated.write_text(
        "```yaml\ntitle: Undated\nurl: https://a.example/u\narea: Dover\n```\nText.\n"
    )
    (tmp_path / "empty.md").write_bytes(b"")
    result = run_cli("ingest", "--json", str(undated), str(tmp_path / "empty.md"))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("new", "updated", "unchanged", "rejected")} == {
        "new": 1, "updated": 0, "unchanged": 0, "rejected": 1,
    }  # fmt: skip
    assert report["errors"] == [
        f"{tmp_path / 'empty.md'}: empty file (an advisory starts with a ```yaml block)"
    ]
    assert len(report["warnings"]) == 1
    assert "no publish.date" in report["warnings"][0]


def test_ingest_of_a_missing_path_is_reported(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("ingest", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr


def test_progress_bar_is_silent_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    log_file = io.StringIO()  # a pipe or a log file: isatty() is False
    monkeypatch.setattr(sys, "stderr", log_file)
    total = PROGRESS_FROM * 10
    advance = progress_bar("ingest", "file", minimum=PROGRESS_FROM)(total)
    for _ in range(total):
        advance(1)
    assert log_file.getvalue() == ""


def test_progress_bar_draws_on_a_terminal_for_large_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    progress_bar("ingest", "file", minimum=PROGRESS_FROM)(PROGRESS_FROM - 1)(1)
    assert screen.getvalue() == ""  # small batches finish before a bar is worth drawing
    progress_bar("ingest", "file", minimum=PROGRESS_FROM)(PROGRESS_FROM)(1)
    assert f"ingest:   0%|          | 0/{PROGRESS_FROM}" in screen.getvalue()


# -- alerts advisories ---------------------------------------------------------------------


def test_list_json_is_an_array_with_offsets_and_slugs(ingested: Run) -> None:
    result = ingested("advisories", "list", "--json")
    assert result.exit_code == 0
    [item] = json.loads(result.stdout)
    assert item["url"] == SAMPLE_URL
    assert item["title"] == "Safety advice after telephone fraudster poses as Kent Police officer"
    assert item["published_at"] == "2020-12-18T14:30:00+00:00"
    for key in ("published_at", "first_seen_at", "updated_at"):
        assert datetime.fromisoformat(item[key]).utcoffset() is not None
    assert item["areas"] == ["medway"]
    assert sorted(item["tags"]) == ["kent", "medway"]
    assert (item["status"], item["priority"], item["revision"]) == ("active", "normal", 1)


def test_list_json_gives_summer_dates_with_the_summer_offset(run_cli: Run, tmp_path: Path) -> None:
    summer = tmp_path / "summer.md"
    summer.write_text(
        "```yaml\ntitle: Summer\nurl: https://a.example/s\npublish:\n  date: 14:30 18/07/2021\n```\nIn Deal.\n"
    )
    assert run_cli("ingest", str(summer)).exit_code == 0
    [item] = json.loads(run_cli("advisories", "list", "--json").stdout)
    assert item["published_at"] == "2021-07-18T14:30:00+01:00"
    assert item["areas"] == ["deal"]


@pytest.mark.parametrize(
    ("args", "count"),
    [
        (["--area", "medway"], 1),
        (["--area", "chatham"], 1),
        (["--area", "ME4"], 1),
        (["--area", "ME4 4TR"], 1),
        (["--area", "kent"], 1),
        (["--area", "dover"], 0),
        (["--since", "01/12/2020"], 1),
        (["--since", "2020-12-18T14:30:00+00:00"], 1),
        (["--since", "19/12/2020"], 0),
        (["--limit", "1"], 1),
    ],
)
def test_list_filters(ingested: Run, args: list[str], count: int) -> None:
    result = ingested("advisories", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == count


def test_list_text_shows_id_local_date_area_and_title(ingested: Run) -> None:
    result = ingested("advisories", "list")
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert line.split()[:4] == ["1", "18/12/2020", "14:30", "medway"]
    assert line.endswith("Safety advice after telephone fraudster poses as Kent Police officer")


def test_list_on_an_empty_store_says_what_to_do(config_path: Path, run_cli: Run) -> None:
    make_database(config_path)
    result = run_cli("advisories", "list")
    assert (result.exit_code, result.stdout) == (0, "No advisories. Run 'alerts ingest' first.\n")
    assert json.loads(run_cli("advisories", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--area", "Narnia"], "unknown area 'Narnia'"),
        (["--area", "Chathm"], "did you mean 'chatham'"),
        (["--since", "31/02/2020"], "Invalid value for --since: impossible date '31/02/2020'"),
        (["--since", "yesterday"], "Invalid value for --since: unreadable date 'yesterday'"),
    ],
)
def test_list_bad_options_exit_2_with_one_line(
    ingested: Run, args: list[str], message: str
) -> None:
    result = ingested("advisories", "list", *args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize("ref", ["1", SAMPLE_URL])
def test_show_by_id_or_url(ingested: Run, ref: str) -> None:
    result = ingested("advisories", "show", ref)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Safety advice after telephone fraudster poses as Kent Police officer"
    assert "published:  14:30 18/12/2020 GMT" in lines
    assert "areas:      Medway" in lines
    assert "Medway man of money" in result.stdout


def test_show_json_has_the_body(ingested: Run) -> None:
    item = json.loads(ingested("advisories", "show", "1", "--json").stdout)
    assert item["id"] == 1
    assert "<strong>Medway</strong>" in item["body_html"]
    assert "Medway man of money" in item["body_text"]


@pytest.mark.parametrize("ref", ["42", "https://nowhere.example/"])
def test_show_unknown_exits_2_with_a_hint(ingested: Run, ref: str) -> None:
    result = ingested("advisories", "show", ref)
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: no advisory {ref!r} (run 'alerts advisories list' to see the ids)\n"
    )


# -- help without a config ---------------------------------------------------------------------


def every_command(
    group: click.Group = cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from every_command(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(every_command()), ids=lambda p: " ".join(p) or "alerts")
def test_help_works_without_a_config_file(
    path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, [*path, "--help"], env={CONFIG_ENV: str(tmp_path / "absent.yaml")}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert not (tmp_path / "var").exists()  # --help touched no database


def test_python_m_alerts_is_the_same_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alerts", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0
    assert "ingest" in result.stdout
    assert "advisories" in result.stdout


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2


assert REPO.exists()
