"""``alerts serve``: the pipeline on a clock, in one long-running process. It runs a
little past 500 lines because the job table, the runner and the services it starts
(sender, watcher, heartbeat, bounces) are one process's parts.

Jobs (APScheduler 3, in the configured time zone, so 07:00 stays 07:00 local across the
clock changes):

* ``startup``: once, at start: the whole pipeline, including any digest whose time
  passed while the service was down (one catch-up, however long it was down).
* ``files``: whenever a watched folder changed (:mod:`alerts.ingest.watch`): read the
  new and changed files once their writes settled, queue immediate and urgent alerts,
  rebuild the feeds. A file still being written is looked at again when it settles.
* ``poll``: every ``scheduler.poll_minutes``: read the folders again (a change the
  watcher missed, a folder on a network filesystem with ``watch: no``); when something
  was new, rebuild the feeds; queue immediate and urgent alerts.
* ``feed-N``: every ``poll_minutes`` of that feed source (default
  ``scheduler.poll_minutes``): fetch it, and the same.
* ``daily`` / ``weekly``: at ``digests.daily_at`` and on ``weekly_day`` at ``weekly_at``.
* ``purge``: daily at 03:30, ``alerts purge`` (personal data past ``retention:``).

Mail is sent by a sender thread (:mod:`alerts.delivery.drain`) that drains the outbox
whenever anything is queued, by this process or another (``alerts web``, ``alerts
digest``), and when a retry falls due.

Jobs run one at a time (one worker thread), are coalesced (a backlog of missed runs is
run once) and may start up to ``scheduler.misfire_grace_minutes`` late (a suspended
machine). Whether a digest is due comes from the ``runs`` table (see
:mod:`alerts.pipeline`), so any job catches up a missed digest once, and the
per-subscriber watermarks make a repeated run send nothing twice.

SIGTERM or Ctrl-C: the message in flight is finished, the rest stays queued, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from alerts import __version__
from alerts.app import App
from alerts.config import Config
from alerts.delivery import outbox_drainer
from alerts.delivery.processes import (
    SenderProcesses,
    connection_shares,
    sender_process_count,
)
from alerts.errors import AlertsError
from alerts.ingest.settle import Settling
from alerts.ingest.watch import FolderWatcher
from alerts.locking import InstanceLock, LockLost, NoLock, WaitStopped, instance_lock
from alerts.pipeline import (
    DAILY,
    FATAL,
    POLL,
    REVIEW,
    STARTUP,
    WEEKLY,
    Plan,
    is_due,
    run_cycle,
)
from alerts.types import Frequency, RunReport

log = logging.getLogger("alerts.scheduler")
#: When the daily purge runs (local time): a quiet hour, away from the digests.
PURGE_AT = time(3, 30)
#: How often advisories waiting for review are checked against their source's time.
REVIEW_MINUTES = 1.0


class LocalCronTrigger(CronTrigger):  # type: ignore[misc, unused-ignore]  # APScheduler 3 has no type hints (Any under --strict)
    """A CronTrigger that always moves on.

    APScheduler 3.11's CronTrigger can return the same fire time forever inside the
    repeated autumn hour (agronholm/apscheduler#1021), and the scheduler then spins. A
    digest at 01:30 would hang ``alerts serve`` on the last Sunday of October. When
    the trigger does not move past the previous fire time, ask again from an hour on.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        probe = now
        for _ in range(3):
            if fire is None or previous_fire_time is None or fire > previous_fire_time:
                return fire
            probe = max(probe, previous_fire_time) + timedelta(hours=1)
            fire = super().get_next_fire_time(None, probe)
        return fire


@dataclass(frozen=True)
class JobSpec:
    id: str
    plan: Plan
    trigger: BaseTrigger
    description: str


def folder_labels(config: Config) -> tuple[str, ...]:
    return tuple(source.label for source in config.sources if source.path is not None)


def files_plan(config: Config) -> Plan:
    """What a change in a watched folder runs: the folders only, no digests."""
    return Plan("files", sources=folder_labels(config), feeds="if-new", digests=())


@dataclass(frozen=True)
class TaskSpec:
    """A recurring job that is not a pipeline cycle (reading bounces, the purge)."""

    id: str
    task: Callable[[App], None]
    trigger: BaseTrigger
    description: str
    does: str


def _every(config: Config, now: datetime, minutes: float) -> IntervalTrigger:
    """Every ``minutes``, first one interval after ``now`` (our clock's: APScheduler
    would read the system's)."""
    return IntervalTrigger(
        minutes=minutes, timezone=config.tz, start_date=now + timedelta(minutes=minutes)
    )


def job_specs(config: Config, now: datetime) -> list[JobSpec]:
    """The recurring pipeline cycles, with triggers in the configured zone. Interval jobs
    first run one interval after ``now``."""
    zone = config.tz

    def every(minutes: float) -> IntervalTrigger:
        return _every(config, now, minutes)

    minutes = config.scheduler.poll_minutes
    digests = config.digests
    feeds = [
        JobSpec(
            f"feed-{index}",
            Plan("poll", sources=(source.label,), feeds="if-new", digests=()),
            every(source.poll_minutes or minutes),
            f"every {source.poll_minutes or minutes:g} minutes: {source.label}",
        )
        for index, source in enumerate(config.sources, start=1)
        if source.feed is not None
    ]
    review = config.review
    reviews = (
        [JobSpec("review", REVIEW, every(REVIEW_MINUTES), f"every {REVIEW_MINUTES:g} minute")]
        if review.sources or review.warnings or review.force_wide_untrusted
        else []
    )
    return [
        *reviews,
        JobSpec(
            "poll",
            replace(POLL, sources=folder_labels(config)),
            every(minutes),
            f"every {minutes:g} minutes",
        ),
        *feeds,
        JobSpec(
            "daily",
            DAILY,
            LocalCronTrigger(
                hour=digests.daily_at.hour, minute=digests.daily_at.minute, timezone=zone
            ),
            f"daily at {digests.daily_at:%H:%M}",
        ),
        JobSpec(
            "weekly",
            WEEKLY,
            LocalCronTrigger(
                day_of_week=digests.weekly_day[:3],
                hour=digests.weekly_at.hour,
                minute=digests.weekly_at.minute,
                timezone=zone,
            ),
            f"{digests.weekly_day}s at {digests.weekly_at:%H:%M}",
        ),
    ]


class JobRunner:
    """Runs one job's cycle at a time; checks the instance lock first; never lets an
    exception escape into APScheduler (it is logged with what to do)."""

    def __init__(
        self,
        app: App,
        stop: threading.Event,
        lock: InstanceLock | None = None,
        *,
        sender: bool = False,
    ):
        self.app = app
        self.stop = stop
        self.lock = lock or NoLock()
        self.busy = threading.Lock()
        self.lost_lock = False
        #: A sender thread drains the outbox: the cycles only queue.
        self.sender = sender
        #: Files in watched folders not yet settled, across cycles.
        self.settling = Settling(app.clock.monotonic)
        #: Set when a watched folder changed; :meth:`react_to_files` runs the files job.
        self.files_changed = threading.Event()
        #: Stops the scheduler (set by :func:`serve`).
        self.halt: Callable[[], None] = lambda: None

    def run(self, plan: Plan) -> RunReport | None:
        if self.stop.is_set():
            self.halt()
            return None
        if self.sender:
            plan = replace(plan, send=False)
        with self.busy:
            if not self.lock.check():
                self.lost_lock = True
                log.error("the instance lock is lost; stopping so two schedulers never send twice")
                self.stop.set()
                self.halt()
                return None
            try:
                return run_cycle(self.app, plan, stop=self.stop, settling=self.settling)
            except OperationalError as exc:
                log.error(
                    "%s job: the database is unavailable (%s); check the database server; "
                    "the job runs again at its next time",
                    plan.kind,
                    str(exc.orig or exc).splitlines()[0],
                )
            except FATAL as exc:
                log.error(
                    "%s job failed: %s; fix config.yaml and restart 'alerts serve'", plan.kind, exc
                )
            except Exception:
                log.exception(
                    "%s job failed unexpectedly; it runs again at its next time", plan.kind
                )
            return None

    def react_to_files(self, plan: Plan) -> None:
        """Run ``plan`` each time a watched folder changed, and again when a file that
        was still being written should have settled; until ``stop``."""
        recheck: float | None = None
        while not self.stop.is_set():
            self.files_changed.wait(recheck)
            if self.stop.is_set():
                return
            self.files_changed.clear()
            report = self.run(plan)
            recheck = report.recheck_in if report is not None else None

    def wait_idle(self) -> None:
        """Block until the job in flight (if any) has finished."""
        with self.busy:
            pass


def build_scheduler(
    app: App,
    runner: JobRunner,
    *,
    scheduler_class: type[BaseScheduler] = BlockingScheduler,
    startup: bool = True,
) -> BaseScheduler:
    """A scheduler with the startup job and the recurring jobs, not yet started."""
    config = app.config
    scheduler = scheduler_class(
        timezone=config.tz,
        executors={"default": ThreadPoolExecutor(1)},  # jobs never overlap
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(config.scheduler.misfire_grace_minutes * 60),
        },
    )
    if startup:
        scheduler.add_job(
            runner.run,
            args=[STARTUP],
            id="startup",
            name="startup catch-up",
            # APScheduler reads the system clock itself to fire jobs; the first run time
            # comes from ours, so the two agree at start (they are one clock outside tests).
            next_run_time=app.now().astimezone(config.tz),
        )
    for spec in job_specs(config, app.now()):
        scheduler.add_job(
            runner.run, spec.trigger, args=[spec.plan], id=spec.id, name=spec.description
        )
    for task in task_specs(config, app.now()):
        scheduler.add_job(
            task.task, task.trigger, args=[app], id=task.id, name=f"{task.description}: {task.does}"
        )
    return scheduler


def task_specs(config: Config, now: datetime) -> list[TaskSpec]:
    """The recurring jobs besides the cycles: reading the bounce mailbox (when one is
    configured) and the daily purge. ``alerts serve`` runs these and ``alerts schedule``
    lists them, from this one list."""
    tasks = []
    bounces = config.delivery.bounces
    if bounces.configured:
        imap = bounces.imap
        mailbox = f"imaps://{imap.host}:{imap.port}/{imap.folder}" if imap else str(bounces.maildir)
        tasks.append(
            TaskSpec(
                "bounces",
                read_bounces_now,
                _every(config, now, bounces.every_minutes),
                f"every {bounces.every_minutes:g} minutes",
                f"read bounces and complaints from {mailbox}",
            )
        )
    tasks.append(
        TaskSpec(
            "purge",
            purge_daily,
            LocalCronTrigger(hour=PURGE_AT.hour, minute=PURGE_AT.minute, timezone=config.tz),
            f"daily at {PURGE_AT:%H:%M}",
            "purge personal data past retention:",
        )
    )
    return tasks


def read_bounces_now(app: App) -> None:
    """``alerts bounces`` for ``alerts serve``; a failure is logged and tried next time."""
    from alerts.delivery import return_paths
    from alerts.delivery.bounces import read_bounces

    try:
        report = read_bounces(
            app.config.delivery,
            app.store,
            app.clock,
            return_paths(app.config.delivery, app.config.mail),
        )
    except AlertsError as exc:
        # The mailbox's server down, a refused login, an untrusted certificate: one line
        # saying what to do; the other jobs go on, and this one runs again next time.
        log.error("Reading the bounce mailbox failed: %s; tried again at the next run", exc)
        return
    except Exception:
        log.exception("Reading the bounce mailbox failed; run 'alerts bounces' to see why")
        return
    if report.read:
        log.info("Bounces read: %s", report.as_dict())


def purge_daily(app: App) -> None:
    """The daily ``alerts purge``; a failure is logged and tried again tomorrow."""
    try:
        report = app.store.retention.purge(app.config.retention, app.config.security, app.now())
    except Exception:
        log.exception("The daily purge failed; run 'alerts purge' to see why")
        return
    log.info("Purged personal data past its time: %s", report.as_dict())


def schedule_table(app: App, now: datetime) -> list[dict[str, Any]]:
    """Every job with its next run time as of ``now`` (what ``alerts schedule`` prints)."""
    rows: list[dict[str, Any]] = [
        {
            "job": "startup",
            "when": "when 'alerts serve' starts",
            "next_run": None,
            "does": "ingest, immediate alerts, feeds, digests that are due",
        }
    ]
    watched = [s for s in app.config.sources if s.path is not None and s.watch != "no"]
    if watched:
        rows.append(
            {
                "job": "files",
                "when": "when a watched folder changes",
                "next_run": None,
                "does": "read new and changed files once written; immediate alerts; feeds",
            }
        )
    rows.append(
        {
            "job": "sender",
            "when": "whenever mail is queued, and when a retry falls due",
            "next_run": None,
            "does": "send what the outbox holds, confirmations first, then alerts, then digests",
        }
    )
    for spec in job_specs(app.config, now):
        if spec.id == "poll" or spec.id.startswith("feed-"):
            next_run = spec.trigger.get_next_fire_time(None, now.astimezone(app.config.tz))
            what = "read the folders again" if spec.id == "poll" else "fetch the feed"
            does = f"{what}; immediate alerts, and feeds when something is new"
        elif spec.id == "review":
            next_run = spec.trigger.get_next_fire_time(None, now.astimezone(app.config.tz))
            does = (
                "release what waited for review past its source's wait_minutes where"
                " its then is release; immediate alerts"
            )
        else:
            next_run = spec.trigger.get_next_fire_time(None, now.astimezone(app.config.tz))
            does = f"{spec.id} digests"
        row: dict[str, Any] = {
            "job": spec.id,
            "when": spec.description,
            "next_run": next_run,
            "does": does,
        }
        if spec.id in ("daily", "weekly"):
            row["due_now"] = is_due(
                app.store, app.config.digests, app.config.tz, Frequency(spec.id), now
            )
            row["last_digest"] = app.store.runs.last_digest(Frequency(spec.id))
        rows.append(row)
    for task in task_specs(app.config, now):
        rows.append(
            {
                "job": task.id,
                "when": task.description,
                "next_run": task.trigger.get_next_fire_time(None, now.astimezone(app.config.tz)),
                "does": task.does,
            }
        )
    return rows


def serve(
    app: App,
    *,
    standby: bool = False,
    sender_command: Callable[[int], list[str]] | None = None,
) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C. ``sender_command``: the command line of
    one of the ``delivery.sender_processes`` children, given its connections
    (:mod:`alerts.delivery.processes`); without it none are started. Raises
    :class:`~alerts.locking.AlreadyRunning` when another holds the instance lock (unless
    ``standby``: then wait for it to stop and take over) and
    :class:`~alerts.locking.LockLost` if the lock is lost while running."""
    # The settings, the sources' areas and the database were checked (and the database
    # opened) by alerts.cli.checks.check_startup, so a bad one fails now, not in a job.
    lock = instance_lock(app.config.database, "serve", clock=app.clock)
    stop = threading.Event()
    runner = JobRunner(app, stop, lock, sender=True)
    scheduler = build_scheduler(app, runner)
    # Halts the scheduler from a job too: a stop that lands before start() still ends it.
    runner.halt = lambda: scheduler.shutdown(wait=False) if scheduler.running else None
    signals = _StopSignals(stop, runner)
    try:
        if not _acquire(lock, stop, signals, standby=standby):
            return
        services = _Services(app, runner, stop, sender_command)
        _log_start(app.config, services.shares)
        try:
            services.start()
            scheduler.start()  # blocks until shutdown
        finally:
            if signals.received:
                log.info(
                    "%s: finishing the message in flight; the rest stays queued",
                    signals.received[0],
                )
            stop.set()
            runner.files_changed.set()
            runner.wait_idle()
            services.join()
            lock.release()
    finally:
        signals.restore()
    if runner.lost_lock:
        raise LockLost(
            "the instance lock was lost",
            where="database",
            hint="check the database connection; then start 'alerts serve' again",
        )
    log.info("stopped")


class _Services:
    """What runs beside the scheduler's jobs: the sender, the folder watcher and the
    thread that runs the files job when it calls, and the heartbeat."""

    def __init__(
        self,
        app: App,
        runner: JobRunner,
        stop: threading.Event,
        sender_command: Callable[[int], list[str]] | None = None,
    ):
        config = app.config
        children = sender_process_count(config.delivery, config.database) if sender_command else 0
        self.shares = connection_shares(config.delivery, children)
        own, *others = self.shares
        self.sender = outbox_drainer(
            config.delivery,
            config.mail,
            app.store,
            stop,
            clock=app.clock,
            name="sender",
            workers=own,
            role="serve",
        )
        commands = [sender_command(workers or 1) for workers in others] if sender_command else []
        self.processes = SenderProcesses(commands, stop, monotonic=app.clock.monotonic)
        self.watcher = FolderWatcher(config.sources, on_change=runner.files_changed.set, stop=stop)
        self.threads = [
            threading.Thread(
                target=runner.react_to_files,
                args=(files_plan(config),),
                name="alerts-files",
                daemon=True,
            ),
            threading.Thread(
                target=heartbeat, args=(app, stop), name="alerts-heartbeat", daemon=True
            ),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        self.sender.start()
        self.processes.start()
        self.watcher.start()

    def join(self) -> None:
        """Once ``stop`` is set: the message in flight is finished, then all stop."""
        self.processes.stop()
        self.sender.join()
        self.watcher.stop()
        for thread in self.threads:
            thread.join(30)


#: Seconds between heartbeats (see :data:`alerts.store.runs.HEARTBEAT_FRESH`).
HEARTBEAT_SECONDS = 15.0


def heartbeat(app: App, stop: threading.Event) -> None:
    """Write the heartbeat every few seconds until ``stop`` (a thread of its own, so a
    long digest job does not make a healthy service look dead)."""
    who = {"host": socket.gethostname(), "pid": os.getpid(), "version": __version__}
    while not stop.is_set():
        try:
            app.store.runs.beat(app.now(), who)
        except OperationalError as exc:
            log.warning("cannot write the heartbeat: %s", str(exc.orig or exc).splitlines()[0])
        stop.wait(HEARTBEAT_SECONDS)


class _StopSignals:
    """SIGTERM and SIGINT stop the scheduler (a second one exits at once) while installed."""

    def __init__(self, stop: threading.Event, runner: JobRunner):
        self.stop = stop
        self.runner = runner
        self.received: list[str] = []
        self.previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Only sets flags: an exception raised here could land anywhere (even inside
        # logging, which would swallow it).
        name = signal.Signals(signum).name
        if self.stop.is_set():
            os.write(2, f"{name} again: exiting at once\n".encode())
            os._exit(1)
        self.received.append(name)
        self.stop.set()
        self.runner.files_changed.set()
        self.runner.halt()

    def restore(self) -> None:
        _restore(self.previous)


def _acquire(
    lock: InstanceLock, stop: threading.Event, signals: _StopSignals, *, standby: bool
) -> bool:
    """Take the instance lock (``standby``: wait for it). False when stopped while waiting."""
    if standby:
        log.info("standing by until the running scheduler stops")
    try:
        lock.acquire(wait=float("inf") if standby else 0.0, stop=stop)
    except WaitStopped:
        log.info(
            "%s while standing by: stopped", signals.received[0] if signals.received else "stop"
        )
        return False
    return True


def _log_start(config: Config, shares: list[int | None]) -> None:
    digests = config.digests
    log.info(
        "alerts %s serving %s (database %s, time zone %s): folders watched and read again "
        "every %g minutes, "
        "daily digests at %s, weekly digests on %ss at %s; sending from this process and %d"
        " more (delivery.sender_processes)%s",
        __version__,
        config.site.name,
        _redacted(config.database),
        config.timezone,
        config.scheduler.poll_minutes,
        f"{digests.daily_at:%H:%M}",
        digests.weekly_day.capitalize(),
        f"{digests.weekly_at:%H:%M}",
        len(shares) - 1,
        ""
        if shares[0] is None
        else f", {' + '.join(str(n) for n in shares)} connections to the relay",
    )


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
