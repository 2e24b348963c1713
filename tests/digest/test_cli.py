"""``alerts preview`` and ``alerts digest`` as the operator runs them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from alerts.app import App
from tests.support import NOW
from tests.support.digests import DAY, advisory, counts, parse, parts, save, subscribe, watermarks

Run = Callable[..., Result]


@pytest.fixture
def app(config_path: Path) -> Iterator[App]:
    """The CLI's store, with a Medway subscriber and one new advisory (business time is NOW)."""
    app = App(config_path)
    subscribe(app, "jane@example.org", ["medway"], name="Jane")
    subscribe(app, "coordinator@example.org", ["chatham"], forwardable=True)
    save(app, advisory("phone-scam", title="Phone scam in Chatham", areas=["chatham"]))
    yield app
    app.close()


def test_preview_writes_html_and_eml_and_moves_no_watermark(
    app: App, run_cli: Run, tmp_path: Path
) -> None:
    before = watermarks(app)
    out, eml = tmp_path / "preview.html", tmp_path / "preview.eml"
    result = run_cli(
        "preview", "--area", "ME4", "--frequency", "daily", "--out", str(out), "--eml", str(eml)
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 new alert for Chatham: 1 advisory, HTML ")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Phone scam in Chatham" in html
    message = parse(eml.read_bytes())
    assert message["Subject"] == "1 new alert for Chatham"
    text, _ = parts(message)
    assert "Phone scam in Chatham" in text and "/unsubscribe?token=preview" in text
    assert watermarks(app) == before
    assert counts(app) == {"digests": 0, "outbox": 0, "subscriber_advisories": 0}


def test_preview_prints_the_text_part_when_no_file_is_given(app: App, run_cli: Run) -> None:
    result = run_cli("preview", "--area", "chatham", "--frequency", "immediate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Subject: Phone scam in Chatham\n")
    assert "Unsubscribe:" in result.output


def test_forwardable_preview_has_no_personal_link(app: App, run_cli: Run) -> None:
    result = run_cli("preview", "--area", "chatham", "--forwardable")
    assert result.exit_code == 0, result.output
    assert (
        "token=" not in result.output
        and "Subscribe yourself to alerts for Chatham:" in result.output
    )


def test_preview_with_nothing_new_shows_the_latest(app: App, run_cli: Run) -> None:
    result = run_cli("preview", "--area", "medway", "--at", (NOW + 3 * DAY).isoformat(), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["advisories"] == 1 and info["note"].startswith("nothing new in the last day")


def test_preview_of_an_unknown_area_is_one_line_and_exit_2(app: App, run_cli: Run) -> None:
    result = run_cli("preview", "--area", "Atlantis")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: unknown area 'Atlantis' (run 'alerts areas' for the list)"
    ]


def test_digest_dry_run_prints_who_would_get_what_and_writes_nothing(
    app: App, run_cli: Run
) -> None:
    before = watermarks(app)
    result = run_cli("digest", "--frequency", "daily", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sorted(lines[:-1]) == [
        "coordinator@example.org\tdaily\t1 new alert for Chatham\t[1]",
        "jane@example.org\tdaily\t1 new alert for Medway\t[1]",
    ]
    assert (
        lines[-1]
        == "Would queue 2 messages to 2 daily subscribers: 1 advisory in 2 distinct messages."
    )
    assert counts(app) == {"digests": 0, "outbox": 0, "subscriber_advisories": 0}
    assert watermarks(app) == before


def test_digest_queues_into_the_outbox_and_reports_json(app: App, run_cli: Run) -> None:
    result = run_cli("digest", "--frequency", "daily", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {k: report[k] for k in ("messages", "digests", "rendered", "advisories", "dry_run")} == {
        "messages": 2,
        "digests": 2,
        "rendered": 2,
        "advisories": 1,
        "dry_run": False,
    }
    assert counts(app) == {"digests": 2, "outbox": 2, "subscriber_advisories": 2}
    again = json.loads(run_cli("digest", "--frequency", "daily", "--json").output)
    assert again["messages"] == 0


def test_digest_dry_run_json_lists_the_planned_messages(app: App, run_cli: Run) -> None:
    result = run_cli("digest", "--frequency", "daily", "--dry-run", "--json")
    planned = json.loads(result.output)["planned"]
    assert sorted(p["email"] for p in planned) == ["coordinator@example.org", "jane@example.org"]


def test_digest_needs_a_known_frequency(run_cli: Run) -> None:
    result = run_cli("digest", "--frequency", "hourly")
    assert result.exit_code == 2 and "'hourly' is not one of" in result.output


def test_digest_refuses_to_run_beside_a_running_scheduler(app: App, run_cli: Run) -> None:
    from alerts.locking import instance_lock

    with instance_lock(app.config.database, "serve"):
        result = run_cli("digest", "--frequency", "daily")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert counts(app) == {"digests": 0, "outbox": 0, "subscriber_advisories": 0}
