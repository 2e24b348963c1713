"""The pipeline, in order: ingest sources -> build feeds -> queue immediate alerts and
the digests that are due -> send. The order of the stages is written once, here.

``run_once`` runs everything (``alerts run --once``, ``make run``); the scheduler runs
the same cycle with a :class:`Plan` per job. A stage that fails is logged and reported
and the later stages still run (a broken feed template must not stop the mail); a bad
config still stops the run. Every cycle is recorded in the ``runs`` table.

A daily or weekly digest is *due* when its scheduled local time (``digests.daily_at``,
``weekly_day``/``weekly_at`` in ``timezone``) has passed since the last time one was
queued. Any job may check that, so a missed run is caught up once by whichever comes
next, and the per-subscriber watermarks make a repeated run send nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.app import App
from alerts.config import WEEKDAYS, Config, DigestsConfig
from alerts.errors import ConfigError, GazetteerError, UnknownArea
from alerts.store import Store
from alerts.store.runs import FEEDS_BUILT, digest_kind, feeds_stale, last_digest, mark, record_run
from alerts.types import Frequency, RunReport

#: Called with the number of messages to send; returns a callback for each one sent.
SendProgress = Callable[[int], Callable[[int], None]]

log = logging.getLogger("alerts.pipeline")

#: Errors that mean the configuration is wrong: they stop the run (exit status 2).
FATAL = (ConfigError, GazetteerError, UnknownArea)
SCHEDULED = (Frequency.DAILY, Frequency.WEEKLY)


@dataclass(frozen=True)
class Plan:
    """Which stages one cycle runs. ``feeds``: "always", "if-new" (only when an advisory
    changed or expired since the last build, whoever ingested it) or "never".
    ``digests``: the scheduled frequencies to queue if due."""

    kind: str
    ingest: bool = True
    feeds: str = "always"
    immediate: bool = True
    digests: tuple[Frequency, ...] = SCHEDULED
    send: bool = True


ONCE = Plan("run")
#: The scheduler's jobs. Each checks what digests are due, so a missed one is caught up.
STARTUP = Plan("startup")
POLL = Plan("poll", feeds="if-new")
DAILY = Plan("daily", digests=(Frequency.DAILY,))
WEEKLY = Plan("weekly", digests=(Frequency.WEEKLY,))


def run_once(
    app: App,
    *,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    progress: SendProgress | None = None,
) -> RunReport:
    """Run the whole pipeline once: ingest, feeds, immediate alerts and due digests, send.

    ``now`` is the instant the run is for (tests freeze it); ``stop`` (set on SIGTERM)
    skips the stages not yet started and lets delivery finish the message in flight;
    ``progress`` is handed to delivery (the CLI draws a bar with it).
    """
    return run_cycle(app, ONCE, now=now, stop=stop, progress=progress)


def run_cycle(
    app: App,
    plan: Plan,
    *,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    progress: SendProgress | None = None,
) -> RunReport:
    """Run the stages ``plan`` asks for, in pipeline order, record the run and log one line."""
    # A run on the clock lets delivery read the clock as it goes (retry times); a run
    # for a given instant (tests, replays) sends as of that instant.
    send_at = now
    now = now or app.now()
    stop = stop or threading.Event()
    report = RunReport(kind=plan.kind, started_at=now)
    clock = time.monotonic()

    def stage(name: str, action: Any) -> Any:
        if stop.is_set():
            report.stopped = True
            return None
        try:
            return action()
        except FATAL:
            raise
        except Exception as exc:
            # One failed stage must not stop the others: feeds can fail while mail goes out.
            log.error(
                "%s failed: %s",
                name,
                exc,
                exc_info=not hasattr(exc, "hint"),
                extra={"ctx_stage": name},
            )
            report.failed_stages.append(name)
            report.problems.append(f"{name}: {exc}")
            return None

    found = False
    if plan.ingest:
        ingest = stage("ingest", lambda: _ingest(app, now, report))
        found = bool(ingest)
    if plan.feeds == "always" or (
        plan.feeds == "if-new" and (found or feeds_stale(app.store, now))
    ):
        stage("feeds", lambda: _feeds(app, now, report))
    if plan.immediate:
        stage("immediate", lambda: _queue(app, Frequency.IMMEDIATE, now, report))
    for frequency in plan.digests:
        if is_due(app.store, app.config, frequency, now):
            stage(f"{frequency.value} digests", lambda f=frequency: _digest(app, f, now, report))
    if plan.send:
        stage("send", lambda: _send(app, send_at, stop, report, progress))
    report.seconds = time.monotonic() - clock
    report.finished_at = now + timedelta(seconds=report.seconds)
    record_run(app.store, report)
    # Each problem on a line of its own, naming the file or source: an operator of
    # 'alerts serve' reads the log, not a terminal.
    for problem in report.problems:
        log.warning("%s", problem, extra={"ctx_kind": report.kind})
    log.info(
        "%s",
        report.summary(),
        extra={f"ctx_{k}": v for k, v in report.as_dict().items() if k != "problems"},
    )
    return report


# -- the stages ---------------------------------------------------------------


def _ingest(app: App, now: datetime, report: RunReport) -> bool:
    from alerts.ingest import ingest_sources

    result = ingest_sources(app.config, app.store, app.gazetteer, now=now)
    counts = result.counts()
    report.new, report.updated = counts["new"], counts["updated"]
    report.rejected, report.failed_sources = counts["rejected"], counts["failed_sources"]
    report.problems += [f"rejected: {e}" for e in result.rejected]
    report.problems += [f"source failed: {e}" for e in result.source_errors]
    return bool(result.new or result.updated)


def _feeds(app: App, now: datetime, report: RunReport) -> None:
    from alerts.feeds import build_feeds

    result = build_feeds(app.config, app.store, app.gazetteer, now=now)
    report.feeds_written, report.feeds_unchanged = len(result.written), result.unchanged
    mark(app.store, FEEDS_BUILT, now)


def _queue(app: App, frequency: Frequency, now: datetime, report: RunReport) -> None:
    from alerts.digest import queue_digests

    result = queue_digests(app.config, app.store, app.gazetteer, frequency, now=now)
    report.queued += result.messages


def _digest(app: App, frequency: Frequency, now: datetime, report: RunReport) -> None:
    _queue(app, frequency, now, report)
    report.digests.append(frequency.value)
    # The marker that makes this digest not due again until its next scheduled time.
    mark(app.store, digest_kind(frequency), now)


def _send(
    app: App, now: datetime | None, stop: threading.Event, report: RunReport, progress: SendProgress | None
) -> None:
    from alerts.delivery import send_pending

    result = send_pending(app, now=now, stop=stop, progress=progress)
    report.send = result
    report.stopped = report.stopped or result.stopped
    report.problems += [f"send: {e}" for e in result.errors]
    if result.errors and not result.deferred:
        report.failed_stages.append("send")


# -- what is due --------------------------------------------------------------


def last_scheduled(
    frequency: Frequency, digests: DigestsConfig, now: datetime, zone: Any
) -> datetime:
    """The latest scheduled local time for ``frequency`` digests at or before ``now``."""
    local = now.astimezone(zone)
    at = digests.daily_at if frequency is Frequency.DAILY else digests.weekly_at
    day = local.date()
    if frequency is Frequency.WEEKLY:
        day -= timedelta(days=(day.weekday() - WEEKDAYS.index(digests.weekly_day)) % 7)
    step = timedelta(days=1 if frequency is Frequency.DAILY else 7)
    for _ in range(3):
        # fold=0: in the autumn's repeated hour the first instant counts; a time in the
        # spring gap resolves forward, as the clocks do.
        moment = datetime.combine(day, at, tzinfo=zone).astimezone(now.tzinfo)
        if moment <= now:
            return moment
        day -= step
    raise AssertionError("unreachable: a scheduled time within three periods")


def is_due(store: Store, config: Config, frequency: Frequency, now: datetime) -> bool:
    """True when the scheduled time of ``frequency`` digests has passed since the last one."""
    last = last_digest(store, frequency)
    return last is None or last < last_scheduled(frequency, config.digests, now, config.tz)
