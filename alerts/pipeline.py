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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from alerts.app import App
from alerts.config import WEEKDAYS, DigestsConfig
from alerts.errors import ConfigError, GazetteerError, UnknownArea
from alerts.schema import advisories, runs
from alerts.types import Frequency

#: Called with the number of messages to send; returns a callback for each one sent.
SendProgress = Callable[[int], Callable[[int], None]]

log = logging.getLogger("alerts.pipeline")

#: Errors that mean the configuration is wrong: they stop the run (exit status 2).
FATAL = (ConfigError, GazetteerError, UnknownArea)
#: How long the rows of frequent runs are kept (digest rows are kept: they say what is due).
KEEP_POLLS = timedelta(days=30)
#: The kinds of ``runs`` rows that come every few minutes; only the last KEEP_POLLS are kept.
PRUNED = ("poll", "run", "send")
SCHEDULED = (Frequency.DAILY, Frequency.WEEKLY)
FEEDS_BUILT = "feeds"


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


@dataclass
class RunReport:
    """What one cycle did, in counts, and what went wrong."""

    kind: str
    started_at: datetime
    finished_at: datetime | None = None
    new: int = 0
    updated: int = 0
    rejected: int = 0
    failed_sources: int = 0
    #: Advisories stored but outside coverage (an unknown or other force's area).
    outside_coverage: int = 0
    #: Advisories that named no place and so went to every subscriber.
    no_place: int = 0
    feeds_written: int = 0
    feeds_unchanged: int = 0
    queued: int = 0
    digests: list[str] = field(default_factory=list)
    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    stopped: bool = False
    #: One line per problem: rejected files, failed sources, failed stages, relay trouble.
    problems: list[str] = field(default_factory=list)
    #: Stages that raised (their names); later stages still ran.
    failed_stages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False when the run reported failures: rejected advisories, failed sources, a
        failed stage, or messages deferred or given up. Bounces are not failures."""
        return not (
            self.rejected
            or self.failed_sources
            or self.failed_stages
            or self.deferred
            or self.failed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ok": self.ok,
            "new": self.new,
            "updated": self.updated,
            "rejected": self.rejected,
            "failed_sources": self.failed_sources,
            "outside_coverage": self.outside_coverage,
            "no_place": self.no_place,
            "feeds_written": self.feeds_written,
            "feeds_unchanged": self.feeds_unchanged,
            "queued": self.queued,
            "digests": list(self.digests),
            "sent": self.sent,
            "deferred": self.deferred,
            "bounced": self.bounced,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "stopped": self.stopped,
            "failed_stages": list(self.failed_stages),
            "problems": list(self.problems),
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """One line an operator reads in a log."""
        digests = f" (ran the {' and '.join(self.digests)} digests)" if self.digests else ""
        line = (
            f"{self.kind}: {self.new} new, {self.updated} updated, {self.rejected} rejected, "
            f"{self.failed_sources} sources failed; {self.feeds_written} feeds written; "
            f"{self.queued} messages queued{digests}; {self.sent} sent, {self.deferred} deferred, "
            f"{self.bounced} bounced, {self.failed} failed ({self.seconds:.1f} s)"
        )
        if self.outside_coverage or self.no_place:
            line += (
                f"; areas to check: {self.outside_coverage} outside coverage (not mailed),"
                f" {self.no_place} force-wide for want of a place"
            )
        if self.failed_stages:
            line += f"; FAILED: {', '.join(self.failed_stages)}"
        if self.stopped:
            line += "; stopped early, the rest stays queued"
        return line


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
        plan.feeds == "if-new" and (found or feeds_stale(app.store.engine, now))
    ):
        stage("feeds", lambda: _feeds(app, now, report))
    if plan.immediate:
        stage("immediate", lambda: _queue(app, Frequency.IMMEDIATE, now, report))
    for frequency in plan.digests:
        if is_due(app, frequency, now):
            stage(f"{frequency.value} digests", lambda f=frequency: _digest(app, f, now, report))
    if plan.send:
        stage("send", lambda: _send(app, send_at, stop, report, progress))
    report.seconds = time.monotonic() - clock
    report.finished_at = now + timedelta(seconds=report.seconds)
    record_run(app.store.engine, report)
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
    # Warnings (an unknown area: outside coverage; no place: force-wide; a missing date)
    # are problem lines too, so 'alerts run' and 'alerts serve' show what ingest shows.
    report.problems += [f"warning: {w}" for w in result.warnings]
    report.outside_coverage, report.no_place = counts["outside_coverage"], counts["no_place"]
    return bool(result.new or result.updated)


def _feeds(app: App, now: datetime, report: RunReport) -> None:
    from alerts.feeds import build_feeds

    result = build_feeds(app, now=now)
    report.feeds_written, report.feeds_unchanged = len(result.written), result.unchanged
    _mark(app.store.engine, FEEDS_BUILT, now)


def feeds_stale(engine: Engine, now: datetime) -> bool:
    """Did an advisory change (``alerts ingest`` by hand, say) or expire since the last build?"""
    with engine.connect() as conn:
        built = conn.execute(
            select(func.max(runs.c.started_at)).where(runs.c.kind == FEEDS_BUILT)
        ).scalar_one()
        if built is None:
            return True
        changed = conn.execute(
            select(advisories.c.id)
            .where(
                (advisories.c.updated_at > built)
                | ((advisories.c.expires_at > built) & (advisories.c.expires_at <= now))
            )
            .limit(1)
        ).first()
    return changed is not None


def _mark(engine: Engine, kind: str, now: datetime) -> None:
    """A marker row in ``runs``: when this was last done (feeds built, a digest queued).
    Only the latest marker of a kind is ever read."""
    add_run(engine, kind, now, now, ok=True, summary={})


def _queue(app: App, frequency: Frequency, now: datetime, report: RunReport) -> None:
    from alerts.digest import queue_digests

    result = queue_digests(app, frequency, now=now)
    report.queued += result.messages


def _digest(app: App, frequency: Frequency, now: datetime, report: RunReport) -> None:
    _queue(app, frequency, now, report)
    report.digests.append(frequency.value)
    # The marker that makes this digest not due again until its next scheduled time.
    _mark(app.store.engine, digest_kind(frequency), now)


def _send(
    app: App, now: datetime | None, stop: threading.Event, report: RunReport, progress: SendProgress | None
) -> None:
    from alerts.delivery import send_pending

    result = send_pending(app, now=now, stop=stop, progress=progress)
    report.sent, report.deferred, report.bounced = result.sent, result.deferred, result.bounced
    report.failed, report.suppressed = result.failed, result.suppressed
    report.stopped = report.stopped or result.stopped
    report.problems += [f"send: {e}" for e in result.errors]
    if result.errors and not result.deferred:
        report.failed_stages.append("send")


# -- what is due --------------------------------------------------------------


def digest_kind(frequency: Frequency) -> str:
    return f"digest-{frequency.value}"


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


def last_digest(engine: Engine, frequency: Frequency) -> datetime | None:
    """When a ``frequency`` digest run was last queued, from the ``runs`` table."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(runs.c.started_at)).where(
                runs.c.kind == digest_kind(frequency), runs.c.ok.is_(True)
            )
        ).scalar_one()


def is_due(app: App, frequency: Frequency, now: datetime) -> bool:
    """True when the scheduled time of ``frequency`` digests has passed since the last one."""
    last = last_digest(app.store.engine, frequency)
    return last is None or last < last_scheduled(frequency, app.config.digests, now, app.config.tz)


def record_run(engine: Engine, report: RunReport) -> None:
    """One ``runs`` row per cycle; poll and ``alerts run`` rows older than :data:`KEEP_POLLS`
    are pruned (``alerts run`` from cron every few minutes would otherwise add 100,000 a year)."""
    add_run(
        engine,
        report.kind,
        report.started_at,
        report.finished_at,
        ok=report.ok,
        summary=report.as_dict(),
        prune=PRUNED,
    )


def add_run(
    engine: Engine,
    kind: str,
    started: datetime,
    finished: datetime | None,
    *,
    ok: bool,
    summary: dict[str, Any],
    prune: tuple[str, ...] | None = None,
) -> None:
    """Insert a ``runs`` row and delete the rows of the ``prune`` kinds (default: this
    kind) older than :data:`KEEP_POLLS`, in one transaction."""
    with engine.begin() as conn:
        conn.execute(
            insert(runs).values(
                kind=kind, started_at=started, finished_at=finished, ok=ok, summary=summary
            )
        )
        conn.execute(
            delete(runs).where(
                runs.c.kind.in_(prune or (kind,)), runs.c.started_at < started - KEEP_POLLS
            )
        )
