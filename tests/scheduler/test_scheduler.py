"""The scheduler's timetable: local times across the clock changes, coalesced catch-up,
jobs that never overlap, and ``alerts schedule``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from alerts.app import App
from alerts.clock import ManualClock
from alerts.config import load_config
from alerts.errors import ConfigError
from alerts.pipeline import STARTUP, Plan, is_due, last_scheduled, run_cycle
from alerts.scheduler import JobRunner, build_scheduler, job_specs
from alerts.testing import Faults, SmtpSink
from alerts.types import Frequency
from tests.support import NOW, REPO, make_database
from tests.support.processes import AlertsProcess
from tests.support.seeding import seed_outbox
from tests.support.tables import outbox_rows

LONDON = ZoneInfo("Europe/London")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def next_fires(trigger: CronTrigger, count: int, start: datetime) -> list[datetime]:
    """The next ``count`` fire times after ``start``, in UTC (APScheduler is given the
    time, as the scheduler gives it ours)."""
    fires: list[datetime] = []
    now = start.astimezone(LONDON)
    previous = None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        fires.append(fire.astimezone(UTC))
        previous, now = fire, fire + timedelta(microseconds=1)
    return fires


def jobs(write_config: Callable[..., Path], **digests: str) -> dict[str, CronTrigger]:
    app = App(write_config(digests=digests) if digests else write_config())
    return {spec.id: spec.trigger for spec in job_specs(app.config, NOW)}


def test_daily_0700_is_0700_london_time_across_the_spring_change(
    write_config: Callable[..., Path],
) -> None:
    daily = jobs(write_config)["daily"]
    fires = next_fires(daily, 4, utc(2026, 3, 27, 12, 0))
    # 28 March: GMT, 07:00 is 07:00 UTC. From Sunday 29 March: BST, 07:00 is 06:00 UTC.
    assert fires == [
        utc(2026, 3, 28, 7),
        utc(2026, 3, 29, 6),
        utc(2026, 3, 30, 6),
        utc(2026, 3, 31, 6),
    ]
    assert all(fire.astimezone(LONDON).hour == 7 for fire in fires)


def test_daily_0700_is_0700_london_time_across_the_autumn_change(
    write_config: Callable[..., Path],
) -> None:
    daily = jobs(write_config)["daily"]
    fires = next_fires(daily, 4, utc(2026, 10, 23, 12, 0))
    # 24 October: BST (06:00 UTC). From Sunday 25 October: GMT (07:00 UTC).
    assert fires == [
        utc(2026, 10, 24, 6),
        utc(2026, 10, 25, 7),
        utc(2026, 10, 26, 7),
        utc(2026, 10, 27, 7),
    ]


def test_a_digest_in_the_repeated_autumn_hour_goes_once(write_config: Callable[..., Path]) -> None:
    app = App(write_config(digests={"daily_at": "01:30"}))
    daily = {spec.id: spec.trigger for spec in job_specs(app.config, NOW)}["daily"]
    fires = next_fires(daily, 3, utc(2026, 10, 24, 12, 0))
    # 01:30 happens twice on 25 October (BST, then GMT). APScheduler 3.11's own trigger
    # returns the first forever (the scheduler would spin); ours fires once and moves on.
    assert fires == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]
    # Had a job run again in the repeated hour, the digest would not be due a second time.
    first, second = fires[0], fires[0] + timedelta(hours=1)
    assert last_scheduled(Frequency.DAILY, app.config.digests, first, LONDON) == first
    assert last_scheduled(Frequency.DAILY, app.config.digests, second, LONDON) == first
    assert is_due(app.store, app.config.digests, app.config.tz, Frequency.DAILY, first)
    run_cycle(
        app, Plan("daily", ingest=False, feeds="never", immediate=False, send=False), now=first
    )
    assert not is_due(app.store, app.config.digests, app.config.tz, Frequency.DAILY, second)
    app.close()


def test_weekly_digest_on_the_dst_sundays(write_config: Callable[..., Path]) -> None:
    weekly = jobs(write_config, weekly_day="sunday", weekly_at="07:00")["weekly"]
    assert next_fires(weekly, 2, utc(2026, 3, 22, 12, 0)) == [
        utc(2026, 3, 29, 6),
        utc(2026, 4, 5, 6),
    ]
    assert next_fires(weekly, 2, utc(2026, 10, 18, 12, 0)) == [
        utc(2026, 10, 25, 7),
        utc(2026, 11, 1, 7),
    ]


def test_jobs_coalesce_never_overlap_and_may_start_late(write_config: Callable[..., Path]) -> None:
    app = App(write_config(scheduler={"poll_minutes": 5, "misfire_grace_minutes": 120}))
    runner = JobRunner(app, threading.Event())
    scheduler = build_scheduler(app, runner, scheduler_class=BackgroundScheduler)
    scheduler.start(paused=True)  # the job defaults apply once the jobs are really added
    found = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)
    assert set(found) == {"startup", "poll", "daily", "weekly", "purge"}
    # The retention purge, daily in the small hours, local time.
    assert str(found["purge"].trigger) == "cron[hour='3', minute='30']"
    for job in found.values():
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 7200
    assert found["startup"].args == (STARTUP,)
    assert found["poll"].trigger.interval == timedelta(minutes=5)
    assert scheduler._executors["default"]._pool._max_workers == 1  # one job at a time
    assert str(scheduler.timezone) == "Europe/London"


def test_a_backlog_of_missed_digests_runs_once(write_config: Callable[..., Path]) -> None:
    """A week of missed 07:00 runs (a suspended machine): APScheduler runs the job once."""
    app = App(write_config())
    ran: list[datetime] = []
    done = threading.Event()

    def job() -> None:
        ran.append(datetime.now(UTC))
        done.set()

    scheduler = BackgroundScheduler(
        timezone=LONDON,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 24 * 3600},
    )
    daily = next(spec for spec in job_specs(app.config, NOW) if spec.id == "daily")
    scheduler.add_job(
        job, daily.trigger, id="daily", next_run_time=datetime.now(LONDON) - timedelta(days=7)
    )
    scheduler.start()
    try:
        assert done.wait(10)
    finally:
        scheduler.shutdown(wait=True)
    assert len(ran) == 1


def test_alerts_schedule_prints_every_job_with_its_next_run(
    config_path: Path, run_cli: Callable[..., object], clock: ManualClock
) -> None:
    make_database(config_path)
    clock.set(NOW)  # Wednesday 25 November 2026, 12:00 UTC
    text = run_cli("schedule").output  # type: ignore[attr-defined]
    data = json.loads(run_cli("schedule", "--json").output)  # type: ignore[attr-defined]
    lines = {line.split()[0]: line for line in text.splitlines() if not line.startswith(" ")}
    assert text.count("never queued yet; due now: it goes at the next start or poll") == 2
    assert set(lines) == {"startup", "files", "sender", "poll", "daily", "weekly"}
    assert "next Thu 26 Nov 2026 07:00 GMT (07:00 UTC)" in lines["daily"]
    assert "next Mon 30 Nov 2026 07:00 GMT (07:00 UTC)" in lines["weekly"]
    assert "next Wed 25 Nov 2026 12:10 GMT" in lines["poll"]
    by_job = {row["job"]: row for row in data}
    assert by_job["daily"]["next_run"] == "2026-11-26T07:00:00+00:00"
    assert by_job["daily"]["due_now"] is True  # never run yet: the first start sends one
    assert by_job["startup"]["next_run"] is None
    assert by_job["weekly"]["last_digest"] is None


def test_alerts_schedule_in_summer_shows_bst(
    config_path: Path, run_cli: Callable[..., object], clock: ManualClock
) -> None:
    make_database(config_path)
    clock.set(utc(2026, 7, 1, 12, 0))
    text = run_cli("schedule").output  # type: ignore[attr-defined]
    assert "next Thu 02 Jul 2026 07:00 BST (06:00 UTC)" in text


@pytest.mark.parametrize("day", ["monday", "sunday"])
def test_weekly_day_names_map_to_cron(write_config: Callable[..., Path], day: str) -> None:
    weekly = jobs(write_config, weekly_day=day)["weekly"]
    fire = next_fires(weekly, 1, NOW)[0]
    assert fire.astimezone(LONDON).strftime("%A").lower() == day


# -- alerts serve, as a real process ---------------------------------------------


class ServeProcess(AlertsProcess):
    """``alerts serve`` in a subprocess."""

    def __init__(self, config: Path, *args: str):
        super().__init__(config, "serve", *args, cwd=str(REPO))


@pytest.fixture
def serving(write_config: Callable[..., Path]) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(config: Path | None = None, *args: str) -> ServeProcess:
        process = ServeProcess(config or write_config(), *args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


@pytest.mark.slow
def test_sigterm_finishes_the_message_in_flight_and_leaves_the_rest_queued(
    write_config: Callable[..., Path], serving: Callable[..., ServeProcess]
) -> None:
    with SmtpSink(faults=Faults(delay=0.2)) as sink:  # a slow relay: about 0.6 s a message
        config = write_config(
            delivery={
                "backend": "smtp",
                "smtp": {
                    "host": sink.host,
                    "port": sink.port,
                    "security": "none",
                    "connections": 1,
                },
            },
            email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        )
        app = App(config)
        queued = seed_outbox(app.store, count=20, now=datetime.now(UTC) - timedelta(minutes=1))
        server = serving(config)
        assert sink.wait_for(1)
        code = server.stop()
        accepted = sink.message_ids()
    assert code == 0
    states = {row["message_id"]: row["status"] for row in outbox_rows(app.store.engine)}
    app.close()
    sent = sorted(m.strip("<>") for m, s in states.items() if s == "sent")
    assert sent == sorted(accepted)  # every message the relay took is marked sent, no other
    assert 1 <= len(sent) <= 3
    assert sorted(states.values()).count("pending") == len(queued) - len(sent)  # none left claimed
    # Every log line is JSON; the sender's line carries its counts as fields.
    for line in server.lines:
        json.loads(line)
    assert server.wait_for("SIGTERM: finishing the message in flight")["level"] == "info"
    sender = server.wait_for("sender: ")
    assert (
        sender["sent"] == len(sent)
        and sender["stopped"] is True
        and sender["logger"] == "alerts.sender"
    )


@pytest.mark.slow
def test_a_second_serve_says_who_runs_and_exits_and_a_standby_takes_over(
    write_config: Callable[..., Path], serving: Callable[..., ServeProcess]
) -> None:
    config = write_config()
    first = serving(config)
    first.wait_for("startup: ")
    second = subprocess.run(
        [sys.executable, "-m", "alerts", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert (
        f"another Area Alerts scheduler is running against this database: alerts serve pid {first.proc.pid}"
        in second.stderr
    )
    standby = serving(config, "--standby")
    standby.wait_for("standing by")
    first.proc.kill()  # dies without a word: the lock goes with it
    first.proc.wait()
    standby.wait_for("startup: ")
    # A standby told to stop while it waits stops at once, cleanly.
    spare = serving(config, "--standby")
    spare.wait_for("standing by")
    assert spare.stop() == 0
    spare.wait_for("SIGTERM while standing by: stopped")
    assert standby.stop(signal.SIGINT) == 0  # Ctrl-C: the same as SIGTERM
    standby.wait_for("SIGINT: finishing the message in flight")


def test_each_feed_is_polled_at_its_own_interval_and_folders_are_read_again_every_poll(
    write_config: Callable[..., Path], advisory_dir: Path
) -> None:
    app = App(
        write_config(
            sources=[
                {"path": str(advisory_dir)},
                {"feed": "https://example.org/fast.rss", "name": "fast", "poll_minutes": 2},
                {"feed": "https://example.org/slow.rss", "name": "slow"},
            ],
            scheduler={"poll_minutes": 15},
        )
    )
    specs = {spec.id: spec for spec in job_specs(app.config, NOW)}
    assert specs["feed-2"].plan.sources == ("fast",)
    assert specs["feed-2"].trigger.interval.total_seconds() == 120
    assert specs["feed-3"].trigger.interval.total_seconds() == 900
    assert specs["poll"].plan.sources == (advisory_dir.name,)  # a folder is named by its last part


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"feed": "https://example.org/a.rss", "watch": "poll"}, "'watch' is for folders"),
        ({"path": "advisories", "poll_minutes": 5}, "'poll_minutes' is for feeds"),
        ({"path": "advisories", "watch": "sometimes"}, "sources[0].watch"),
    ],
)
def test_watch_settings_on_the_wrong_kind_of_source_name_the_key(
    write_config: Callable[..., Path], source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_config(sources=[source]))
