"""The whole pipeline once, end to end on real stores and a real Maildir: from an
advisory file to messages in the inbox, digests when they are due, failures reported
without stopping the other stages."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.app import App
from alerts.config import DigestsConfig
from alerts.pipeline import Plan, is_due, last_scheduled, run_cycle, run_once
from alerts.store.runs import KEEP_POLLS
from alerts.subscribers.validation import Subscription
from alerts.types import Frequency, RunReport, SendReport
from tests.support import NOW

LONDON = ZoneInfo("Europe/London")
#: The whole pipeline but the feeds (300-odd files a build): for tests about the rest.
NO_FEEDS = Plan("run", feeds="never")
POLL_NO_FEEDS = Plan("poll", feeds="never")
ADVISORY = """```yaml
title: Courier fraud warning after Chatham residents targeted | Kent Police
url: https://www.kent.police.uk/news/kent/2026/courier-fraud-chatham/
area: Kent
publish:
  date: {date}
```

Officers in **Chatham** are warning residents after calls from fraudsters posing as police.
"""


def write_advisory(folder: Path, name: str, when: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        ADVISORY.format(date=when.astimezone(LONDON).strftime("%H:%M %d/%m/%Y"))
    )


@pytest.fixture
def app(tmp_path: Path, write_config: Callable[..., Path], db_url: str) -> Iterator[App]:
    folder = tmp_path / "incoming"
    folder.mkdir()
    app = App(write_config(database=db_url, sources=[{"path": str(folder)}]))
    people = [
        ("now@example.org", Frequency.IMMEDIATE, "medway"),
        ("daily@example.org", Frequency.DAILY, "chatham"),
        ("weekly@example.org", Frequency.WEEKLY, "kent"),
        ("dover@example.org", Frequency.IMMEDIATE, "dover"),
    ]
    for email, frequency, area in people:
        app.store.subscribers.add(
            Subscription(email, (area,), frequency), now=NOW - timedelta(days=1)
        )
    yield app
    app.close()


def inbox(app: App) -> list[Path]:
    return sorted((app.config.delivery.maildir / "new").glob("*"))


def recipients(app: App) -> list[str]:
    found = []
    for path in inbox(app):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("to:"):
                found.append(line.split(":", 1)[1].strip())
                break
    return sorted(found)


def source_folder(app: App) -> Path:
    path = app.config.sources[0].path
    assert path is not None
    return path


def test_run_once_takes_an_advisory_from_file_to_inbox(app: App) -> None:
    write_advisory(source_folder(app), "fraud.md", NOW - timedelta(hours=1))
    report = run_once(app, now=NOW)
    assert report.ok, report.problems
    assert (report.new, report.rejected, report.failed_sources) == (1, 0, 0)
    assert report.feeds_written > 0 and (app.config.feeds.out / "medway.rss").exists()
    # Immediate for Medway, and (never run before, so due) the daily and weekly digests.
    assert report.digests == ["daily", "weekly"]
    assert report.queued == 3 and report.sent == 3 and report.deferred == report.bounced == 0
    assert recipients(app) == ["daily@example.org", "now@example.org", "weekly@example.org"]


def test_a_second_run_sends_nothing_twice(app: App) -> None:
    write_advisory(source_folder(app), "fraud.md", NOW - timedelta(hours=1))
    run_once(app, now=NOW)
    again = run_once(app, now=NOW + timedelta(minutes=10))
    assert (again.new, again.queued, again.sent, again.digests) == (0, 0, 0, [])
    assert again.feeds_written == 0 and again.feeds_unchanged > 0
    assert len(inbox(app)) == 3


def test_each_run_is_recorded_with_its_summary(app: App) -> None:
    report = run_cycle(app, NO_FEEDS, now=NOW)
    rows = app.store.runs.history()
    kinds = [row.kind for row in rows]
    assert kinds == ["digest-daily", "digest-weekly", "run"]
    summary = rows[-1].summary
    assert rows[-1].ok is True and summary["sent"] == report.sent and summary["kind"] == "run"
    assert rows[-1].started_at == NOW


def test_a_daily_digest_is_due_once_its_local_time_has_passed(app: App) -> None:
    run_cycle(app, NO_FEEDS, now=NOW)  # Wednesday 12:00: daily and weekly go
    thursday = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 07:00 GMT
    assert not is_due(
        app.store,
        app.config.digests,
        app.config.tz,
        Frequency.DAILY,
        thursday - timedelta(minutes=1),
    )
    write_advisory(source_folder(app), "fraud.md", thursday - timedelta(hours=2))
    report = run_cycle(app, NO_FEEDS, now=thursday + timedelta(minutes=1))
    assert report.digests == ["daily"]  # the weekly waits for Monday
    assert sorted(recipients(app)) == ["daily@example.org", "now@example.org"]


def test_a_machine_down_for_days_sends_one_catch_up_digest(app: App) -> None:
    run_cycle(app, NO_FEEDS, now=NOW - timedelta(days=4))
    write_advisory(source_folder(app), "fraud.md", NOW - timedelta(hours=1))
    # Four daily runs were missed: one catch-up covers them all.
    report = run_cycle(app, POLL_NO_FEEDS, now=NOW)
    assert "daily" in report.digests
    assert recipients(app).count("daily@example.org") == 1
    later = run_cycle(app, POLL_NO_FEEDS, now=NOW + timedelta(minutes=10))
    assert later.digests == [] and later.sent == 0


def test_a_failing_source_is_reported_and_the_rest_runs(
    tmp_path: Path, write_config: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    folder = tmp_path / "incoming"
    write_advisory(folder, "fraud.md", NOW - timedelta(hours=1))
    dead = "http://127.0.0.1:9/news.rss"  # the discard port: nothing listens
    config = write_config(sources=[{"path": str(folder)}, {"feed": dead, "timeout": 2}])
    result = run_cli("run", "--once", "--json", config=config)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["new"] == 1 and summary["failed_sources"] == 1 and summary["ok"] is False
    assert any(dead in problem for problem in summary["problems"])
    assert summary["feeds_written"] > 0


def test_a_failing_stage_does_not_stop_the_later_ones(app: App, tmp_path: Path) -> None:
    write_advisory(source_folder(app), "fraud.md", NOW - timedelta(hours=1))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the feeds folder should be")
    broken = App(_config_with(app, tmp_path, feeds={"out": str(blocker)}))
    try:
        report = run_once(broken, now=NOW)
    finally:
        broken.close()
    assert report.failed_stages == ["feeds"] and not report.ok
    assert report.sent == 3  # the mail still went
    assert "FAILED: feeds" in report.summary()


def _config_with(app: App, tmp_path: Path, **changes: Any) -> Path:
    import yaml

    data = yaml.safe_load(Path(str(app.config_path)).read_text())
    data.update(changes)
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_stop_before_the_run_skips_the_stages(app: App) -> None:
    stop = threading.Event()
    stop.set()
    report = run_once(app, now=NOW, stop=stop)
    assert report.stopped and report.new == 0 and report.sent == 0


def test_old_poll_records_are_pruned(app: App) -> None:
    old = NOW - KEEP_POLLS - timedelta(days=1)
    app.store.runs.add("poll", old, None, ok=True, summary={})
    assert [r.started_at for r in app.store.runs.history("poll")] == [old]
    run_cycle(app, POLL_NO_FEEDS, now=NOW)
    assert [r.started_at for r in app.store.runs.history("poll")] == [NOW]


def test_alerts_run_refuses_while_serve_holds_the_lock(
    run_cli: Callable[..., Any], config_path: Path
) -> None:
    from alerts.config import load_config
    from alerts.locking import instance_lock
    from alerts.store import open_store

    database = load_config(config_path).database
    open_store(database).close()
    with instance_lock(database, "serve"):
        result = run_cli("run", "--once")
    assert result.exit_code == 1
    assert (
        "another Area Alerts scheduler is running against this database: alerts serve pid"
        in result.stderr
    )


def test_alerts_run_prints_one_summary_line(run_cli: Callable[..., Any]) -> None:
    result = run_cli("run", "--once")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("run: 1 new, 0 updated, 0 rejected, 0 sources failed; ")


# -- when digests are due -------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 3, 28, 7, 0), utc(2026, 3, 28, 7, 0)),  # Saturday, GMT
        (utc(2026, 3, 29, 5, 59), utc(2026, 3, 28, 7, 0)),  # Sunday before 07:00 BST
        (utc(2026, 3, 29, 6, 0), utc(2026, 3, 29, 6, 0)),  # Sunday 07:00 BST
        (utc(2026, 10, 25, 6, 30), utc(2026, 10, 24, 6, 0)),  # Sunday 06:30 GMT: still Saturday's
        (utc(2026, 10, 25, 7, 0), utc(2026, 10, 25, 7, 0)),  # Sunday 07:00 GMT
    ],
)
def test_last_scheduled_daily_time_across_the_clock_changes(
    now: datetime, expected: datetime
) -> None:
    assert last_scheduled(Frequency.DAILY, DigestsConfig(), now, LONDON) == expected


def test_last_scheduled_weekly_time() -> None:
    digests = DigestsConfig(weekly_day="monday")
    wednesday = utc(2026, 11, 25, 12, 0)
    assert last_scheduled(Frequency.WEEKLY, digests, wednesday, LONDON) == utc(2026, 11, 23, 7, 0)
    monday_early = utc(2026, 11, 30, 6, 59)
    assert last_scheduled(Frequency.WEEKLY, digests, monday_early, LONDON) == utc(
        2026, 11, 23, 7, 0
    )
    assert last_scheduled(Frequency.WEEKLY, digests, utc(2026, 11, 30, 7, 0), LONDON) == utc(
        2026, 11, 30, 7, 0
    )


def test_a_poll_rebuilds_feeds_only_when_an_advisory_changed(app: App, tmp_path: Path) -> None:
    from alerts.ingest import ingest_files
    from alerts.pipeline import POLL

    run_once(app, now=NOW)
    quiet = run_cycle(app, POLL, now=NOW + timedelta(minutes=10))
    assert quiet.feeds_written == quiet.feeds_unchanged == 0  # not even looked at
    # Ingested by hand ('alerts ingest PATH'), not by the poll: the feeds still follow.
    write_advisory(tmp_path / "by-hand", "fraud.md", NOW)
    ingest_files([tmp_path / "by-hand"], app.store, app.gazetteer, now=NOW + timedelta(minutes=15))
    report = run_cycle(app, POLL, now=NOW + timedelta(minutes=20))
    assert report.new == 0 and report.feeds_written > 0


def test_a_run_report_holds_the_send_report_and_keeps_its_suppressed_addresses() -> None:
    delivered = SendReport(sent=2, bounced=1, suppressed=1, suppressed_addresses=1, stopped=True)
    report = RunReport(kind="run", started_at=NOW, send=delivered)
    summary = report.as_dict()
    assert report.send is delivered
    assert (summary["sent"], summary["bounced"], summary["suppressed"]) == (2, 1, 1)
    assert summary["suppressed_addresses"] == 1
    # The run's own keys stay as they were (alerts run --json is a contract).
    assert {
        "new",
        "queued",
        "deferred",
        "failed",
        "stopped",
        "problems",
        "seconds",
    } <= summary.keys()


OUTSIDE = """```yaml
title: Appeal after cyclist hurt in Chelmsford | Essex Police
url: https://www.essex.police.uk/news/essex/2026/cyclist-chelmsford/
area: Essex
publish:
  date: {date}
```

A cyclist was hurt in Chelmsford.
"""
NO_PLACE = """```yaml
title: Lock your shed | Kent Police
url: https://www.kent.police.uk/news/kent/2026/lock-your-shed/
area: Kent
publish:
  date: {date}
```

Check the locks on your shed and garage.
"""


def test_area_warnings_are_problem_lines_of_a_run_and_of_the_schedulers_polls(
    app: App,
    caplog: pytest.LogCaptureFixture,
    run_cli: Callable[..., Any],
    write_config: Callable[..., Path],
) -> None:
    when = (NOW - timedelta(hours=1)).astimezone(LONDON).strftime("%H:%M %d/%m/%Y")
    (source_folder(app) / "essex.md").write_text(OUTSIDE.format(date=when))
    (source_folder(app) / "shed.md").write_text(NO_PLACE.format(date=when))
    with caplog.at_level("WARNING", logger="alerts.pipeline"):
        report = run_cycle(app, POLL_NO_FEEDS, now=NOW)  # what 'alerts serve' runs every poll
    assert (report.new, report.outside_coverage, report.no_place) == (2, 1, 1)
    assert any(
        "essex.md: area 'Essex' is not in the gazetteer, so the advisory is outside coverage" in p
        for p in report.problems
    )
    assert any(
        "shed.md: no place found; treated as force-wide (Kent)" in p for p in report.problems
    )
    logged = [r.getMessage() for r in caplog.records]
    assert any("outside coverage" in line for line in logged)
    assert "1 outside coverage (not mailed), 1 force-wide for want of a place" in report.summary()
    # The outside advisory reached nobody; the force-wide one everybody.
    mail = [path.read_text(encoding="utf-8", errors="replace") for path in inbox(app)]
    assert mail and all("Lock your shed" in message for message in mail)
    assert not any("Chelmsford" in message for message in mail)
    # The config_path fixture rewrote config.yaml with its defaults: write this app's again.
    mine = write_config(database=app.config.database, sources=[{"path": str(source_folder(app))}])
    status = run_cli("status", config=mine)
    assert "Areas to check: 1 outside coverage" in status.output
    assert "outside coverage" in status.output and "! warning:" in status.output
