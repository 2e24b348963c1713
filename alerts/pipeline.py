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

Ingest, review and the immediate queueing run inside the queue turn
(:func:`alerts.locking.queue_turn`), and so does the queueing of due digests (they move
the daily and weekly watermarks): a cycle on the clock takes its ``now`` for them only
once it holds the turn, so no change stamped by the console or a command is passed over.
A cycle for a given instant (``now=``) keeps it. Upstream feeds are fetched before the
turn is taken (the network half of ingest stamps nothing and writes nothing): a slow
upstream must not keep a comms officer's send waiting behind it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from alerts.areas import Gazetteer
from alerts.clock import Clock
from alerts.config import WEEKDAYS, Config, DigestsConfig
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.errors import ConfigError, GazetteerError, UnknownArea
from alerts.feeds import build_feeds
from alerts.ingest import FeedFetches, fetch_sources, ingest_sources, settle_sources
from alerts.ingest.review import settle_timeouts
from alerts.ingest.settle import Settling
from alerts.locking import QueueTurn, QueueTurnBusy, queue_turn
from alerts.store import Store
from alerts.store.runs import FEEDS_BUILT, digest_kind
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
    #: The labels of the sources to ingest (None: all of them).
    sources: tuple[str, ...] | None = None
    feeds: str = "always"
    immediate: bool = True
    digests: tuple[Frequency, ...] = SCHEDULED
    send: bool = True
    #: Release what waited for review past its source's time, where ``then: release``.
    review: bool = True
    #: Go on (and record the cycle) only when the review stage released something: the
    #: review job runs every minute and mostly finds nothing to do.
    only_if_released: bool = False


ONCE = Plan("run")
#: The scheduler's jobs. Each checks what digests are due, so a missed one is caught up.
STARTUP = Plan("startup")
POLL = Plan("poll", feeds="if-new")
DAILY = Plan("daily", digests=(Frequency.DAILY,))
WEEKLY = Plan("weekly", digests=(Frequency.WEEKLY,))
#: Every minute while review: is on: what waited past its time goes (alerts.ingest.review).
REVIEW = Plan("review", ingest=False, feeds="if-new", digests=(), only_if_released=True)


class Resources(Protocol):
    """What a cycle works with (:class:`alerts.app.App` is one): the config, the store,
    the gazetteer and the clock."""

    @property
    def config(self) -> Config: ...
    @property
    def store(self) -> Store: ...
    @property
    def gazetteer(self) -> Gazetteer: ...
    @property
    def clock(self) -> Clock: ...
    def now(self) -> datetime: ...


def run_once(
    app: Resources,
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
    app: Resources,
    plan: Plan,
    *,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    progress: SendProgress | None = None,
    settling: Settling | None = None,
) -> RunReport:
    """Run the stages ``plan`` asks for, in pipeline order, record the run and log one line.

    ``settling`` (``alerts serve``): files still being written are not waited for but
    left for a later look (``report.recheck_in``), remembered in it. Without it they are
    waited for (at most ``MAX_SETTLE_WAIT``) before the queue turn is taken."""
    cycle = _Cycle(
        app.config,
        app.store,
        app.gazetteer,
        app.clock,
        plan,
        now or app.now(),
        now,
        stop or threading.Event(),
        progress,
        queue_turn(app.config.database),
    )
    cycle.settling = settling
    cycle.run()
    return cycle.report


class _Cycle:
    """One cycle: its stages in pipeline order, each guarded so that one that fails is
    reported and the later ones still run."""

    def __init__(
        self,
        config: Config,
        store: Store,
        gazetteer: Gazetteer,
        clock: Clock,
        plan: Plan,
        now: datetime,
        send_at: datetime | None,
        stop: threading.Event,
        progress: SendProgress | None,
        turn: QueueTurn,
    ):
        self.config = config
        self.turn = turn
        self.store = store
        self.gazetteer = gazetteer
        self.clock = clock
        self.plan = plan
        self.now = now
        # A run on the clock lets delivery read the clock as it goes (retry times); a run
        # for a given instant (tests, replays) sends as of that instant.
        self.send_at = send_at
        self.stop = stop
        self.progress = progress
        self.report = RunReport(kind=plan.kind, started_at=now)
        #: Files not yet settled, remembered across cycles (``alerts serve``); None: wait
        #: for them before the queue turn is taken (the settle stage).
        self.settling: Settling | None = None
        #: The feeds fetched before the queue turn, for the ingest inside it.
        self.fetches: FeedFetches = {}

    def run(self) -> None:
        plan = self.plan
        started = self.clock.monotonic()
        found = False
        if plan.ingest:
            # Outside the turn, since neither stamps nor writes anything: files still
            # being written are waited for (unless serve looks again later), then the
            # network.
            if self.settling is None:
                self._stage("settle", self._settle)
            self._stage("fetch", self._fetch)
        try:
            with self._turn("ingest"):
                if plan.ingest:
                    found = bool(self._stage("ingest", self._ingest))
                if plan.review:
                    released = bool(self._stage("review", self._review))
                    if plan.only_if_released and not released and not self.report.failed_stages:
                        return
                    found = released or found
                # Immediate and urgent alerts before the feeds: queueing wakes the senders,
                # so the mail is on its way while the feeds are written.
                if plan.immediate:
                    self._stage("immediate", lambda: self._queue(Frequency.IMMEDIATE))
        except QueueTurnBusy as exc:
            self._busy("ingest and queue", exc)
        now = self.now
        if plan.feeds == "always" or (
            plan.feeds == "if-new" and (found or self.store.runs.feeds_stale(now))
        ):
            self._stage("feeds", self._feeds)
        if plan.digests:
            try:
                with self._turn("digests"):
                    for frequency in plan.digests:
                        if is_due(
                            self.store, self.config.digests, self.config.tz, frequency, self.now
                        ):
                            self._stage(
                                f"{frequency.value} digests",
                                functools.partial(self._digest, frequency),
                            )
            except QueueTurnBusy as exc:
                self._busy("digests", exc)
        if plan.send:
            self._stage("send", self._send)
        self.report.seconds = self.clock.monotonic() - started
        self.report.finished_at = self.report.started_at + timedelta(seconds=self.report.seconds)
        self.store.runs.record(self.report)
        self._log()

    @contextlib.contextmanager
    def _turn(self, what: str) -> Iterator[None]:
        """Hold the queue turn; a cycle on the clock takes its ``now`` inside it."""
        with self.turn.hold(f"{self.plan.kind} {what}"):
            if self.send_at is None:
                self.now = self.clock.now()
            yield

    def _busy(self, name: str, exc: QueueTurnBusy) -> None:
        log.error("%s skipped: %s", name, exc, extra={"ctx_stage": name})
        self.report.failed_stages.append(name)
        self.report.problems.append(f"{name}: {exc}")

    def _stage(self, name: str, action: Callable[[], object]) -> object:
        report = self.report
        if self.stop.is_set():
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

    def _log(self) -> None:
        report = self.report
        # Each problem on a line of its own, naming the file or source: an operator of
        # 'alerts serve' reads the log, not a terminal.
        for problem in report.problems:
            log.warning("%s", problem, extra={"ctx_kind": report.kind})
        log.info(
            "%s",
            report.summary(),
            extra={f"ctx_{k}": v for k, v in report.as_dict().items() if k != "problems"},
        )

    # -- the stages -----------------------------------------------------------

    def _settle(self) -> None:
        self.settling = settle_sources(
            self.config.sources,
            self.store,
            self.gazetteer,
            clock=self.clock,
            zone=self.config.tz,
            only=self.plan.sources,
        )

    def _fetch(self) -> None:
        self.fetches = fetch_sources(
            self.config.sources,
            self.store,
            clock=self.clock,
            site=self.config.site,
            only=self.plan.sources,
        )

    def _ingest(self) -> bool:
        report = self.report
        result = ingest_sources(
            self.config.sources,
            self.store,
            self.gazetteer,
            now=self.now,
            clock=self.clock,
            zone=self.config.tz,
            site=self.config.site,
            digests=self.config.digests,
            review=self.config.review,
            only=self.plan.sources,
            settling=self.settling,
            fetches=self.fetches,
        )
        report.unsettled, report.recheck_in = len(result.unsettled), result.recheck_in
        counts = result.counts()
        report.new, report.updated = counts["new"], counts["updated"]
        report.rejected, report.failed_sources = counts["rejected"], counts["failed_sources"]
        report.problems += [f"rejected: {e}" for e in result.rejected]
        report.problems += [f"source failed: {e}" for e in result.source_errors]
        # Warnings (an unknown area: outside coverage; no place: force-wide; a missing
        # date) are problem lines too, so 'alerts run' and 'alerts serve' show them.
        report.problems += [f"warning: {w}" for w in result.warnings]
        report.outside_coverage, report.no_place = counts["outside_coverage"], counts["no_place"]
        report.surging = {surge.source: surge.held for surge in result.surges}
        return bool(result.new or result.updated)

    def _review(self) -> bool:
        released = settle_timeouts(self.store, self.config.review, now=self.now)
        self.report.problems += [
            f"warning: advisory {i} released, nobody reviewed it in time (review.then: release)"
            for i in released
        ]
        return bool(released)

    def _feeds(self) -> None:
        started = self.clock.monotonic()
        result = build_feeds(
            self.config.feeds, self.config.site, self.store, self.gazetteer, now=self.now
        )
        self.report.feeds_written, self.report.feeds_unchanged = (
            len(result.written),
            result.unchanged,
        )
        # The marker says when, and (for operators) how long the build took.
        took = self.clock.monotonic() - started
        summary = {"seconds": round(took, 3), "written": len(result.written)}
        self.store.runs.add(
            FEEDS_BUILT, self.now, self.now + timedelta(seconds=took), ok=True, summary=summary
        )

    def _queue(self, frequency: Frequency) -> None:
        result = queue_digests(
            self.config.mail,
            self.config.digests,
            self.store,
            self.gazetteer,
            frequency,
            now=self.now,
        )
        self.report.queued += result.messages

    def _digest(self, frequency: Frequency) -> None:
        self._queue(frequency)
        self.report.digests.append(frequency.value)
        # The marker that makes this digest not due again until its next scheduled time.
        self.store.runs.mark(digest_kind(frequency), self.now)

    def _send(self) -> None:
        report = self.report
        result = send_pending(
            self.config.delivery,
            self.config.mail,
            self.store,
            self.clock,
            now=self.send_at,
            stop=self.stop,
            progress=self.progress,
        )
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


def is_due(
    store: Store, digests: DigestsConfig, zone: ZoneInfo, frequency: Frequency, now: datetime
) -> bool:
    """True when the scheduled time of ``frequency`` digests (``digests``' times, local to
    ``zone``) has passed since the last one."""
    last = store.runs.last_digest(frequency)
    return last is None or last < last_scheduled(frequency, digests, now, zone)
