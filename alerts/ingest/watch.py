"""Watching directory sources: a change to an advisory file calls back within a moment.

inotify (through ``watchfiles`` and the Rust ``notify`` crate) where the kernel reports
changes; polling every ``poll_seconds`` where it cannot: a network filesystem (NFS, SMB,
sshfs... report only this machine's own writes), or inotify failing (the watch limit
reached). ``watch: auto`` picks, ``inotify`` / ``poll`` force one, ``no`` leaves the folder
to the scheduler's rescan. The watcher only says *something changed*; what is read, and
when (once its writes have settled), is :mod:`alerts.ingest.directory`'s business.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from alerts.config import SourceConfig
from alerts.ingest.settle import is_advisory_name

log = logging.getLogger(__name__)

#: Filesystems whose changes made on other machines never reach this kernel's inotify.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "vboxsf",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "davfs",
    }
)
#: Milliseconds without a further change before a batch of changes is handed on.
QUIET_MS = 50
#: A folder that cannot be watched (missing, unreadable) is tried again after this.
RETRY_SECONDS = 10.0


@dataclass(frozen=True)
class WatchPlan:
    """How one group of folders is watched."""

    paths: tuple[Path, ...]
    polling: bool
    poll_seconds: float
    #: Chosen by ``auto``: inotify failing falls back to polling.
    automatic: bool


def filesystem_type(path: Path, mounts: str = "/proc/self/mounts") -> str | None:
    """The type of the filesystem ``path`` lies on (Linux), or None when unknown."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as handle:
            table = handle.read().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in table:
        fields = line.split()
        if len(fields) < 3:
            continue
        # Spaces and tabs in mount points are written as octal escapes.
        point = fields[1].encode().decode("unicode_escape")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > best[0]):
            best = (len(point), fields[2])
    return best[1] if best else None


def watch_plans(sources: Iterable[SourceConfig]) -> list[WatchPlan]:
    """How each watched folder is watched (a thread each, so one folder missing or
    failing does not stop the others being watched)."""
    plans: list[WatchPlan] = []
    for source in sources:
        if source.path is None or source.watch == "no":
            continue
        automatic = source.watch == "auto"
        if automatic:
            kind = filesystem_type(source.path)
            polling = kind in NETWORK_FILESYSTEMS
            if polling:
                log.info(
                    "%s is on a network filesystem (%s): polled every %g s, not watched",
                    source.path,
                    kind,
                    source.poll_seconds,
                )
        else:
            polling = source.watch == "poll"
        plans.append(WatchPlan((source.path,), polling, source.poll_seconds, automatic))
    return plans


def advisory_change(_change: watchfiles.Change, path: str) -> bool:
    """Only advisory files count (hidden folders, temporary and backup names do not)."""
    name = os.path.basename(path)
    return is_advisory_name(name) and not any(
        part.startswith(".") for part in Path(path).parts[:-1]
    )


class FolderWatcher:
    """Watches folders in background threads; calls ``on_change`` after each batch of
    changes to advisory files. :meth:`stop` (or setting ``stop``) ends the threads."""

    def __init__(
        self,
        sources: Iterable[SourceConfig],
        on_change: Callable[[], None],
        stop: threading.Event | None = None,
    ):
        self.plans = watch_plans(sources)
        self.on_change = on_change
        self.stop_event = stop or threading.Event()
        self.threads: list[threading.Thread] = []
        #: How each group ended up watched ("inotify" or "polling"), for the log and tests.
        self.modes: dict[tuple[Path, ...], str] = {}

    def start(self) -> FolderWatcher:
        for index, plan in enumerate(self.plans):
            thread = threading.Thread(
                target=self._run, args=(plan,), name=f"alerts-watch-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(10)

    def _run(self, plan: WatchPlan) -> None:
        polling = plan.polling
        while not self.stop_event.is_set():
            missing = [str(p) for p in plan.paths if not p.exists()]
            if missing:
                # The scheduler's poll reports a missing folder; here, wait for it to appear.
                self.stop_event.wait(RETRY_SECONDS)
                continue
            mode = "polling" if polling else "inotify"
            self.modes[plan.paths] = mode
            log.info(
                "watching %s (%s%s)",
                ", ".join(str(p) for p in plan.paths),
                mode,
                f" every {plan.poll_seconds:g} s" if polling else "",
            )
            established = False
            try:
                for changes in watchfiles.watch(
                    *plan.paths,
                    watch_filter=advisory_change,
                    debounce=max(QUIET_MS * 10, int(plan.poll_seconds * 1000)),
                    step=QUIET_MS,
                    stop_event=self.stop_event,
                    force_polling=polling,
                    poll_delay_ms=int(plan.poll_seconds * 1000),
                    raise_interrupt=False,
                    ignore_permission_denied=True,
                    # An empty batch each second when idle: the first says the watch is in
                    # place, and one more look covers a file written while it was set up.
                    rust_timeout=1000,
                    yield_on_timeout=True,
                ):
                    if changes or not established:
                        established = True
                        self.on_change()
                return  # stopped
            except Exception as exc:  # watchfiles raises OSError, RuntimeError and its own
                if not polling and plan.automatic:
                    log.warning(
                        "cannot watch %s with inotify (%s); polling every %g s instead",
                        ", ".join(str(p) for p in plan.paths),
                        exc,
                        plan.poll_seconds,
                    )
                    polling = True
                    continue
                log.error(
                    "watching %s failed (%s); trying again in %g s (the scheduler's poll still reads it)",
                    ", ".join(str(p) for p in plan.paths),
                    exc,
                    RETRY_SECONDS,
                )
                self.stop_event.wait(RETRY_SECONDS)
