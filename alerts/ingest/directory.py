"""Directory sources: configured folders of advisory files, polled cheaply.

What was last seen of each file (mtime, size, SHA-256) is kept in ``source_files``. A
file whose mtime and size are unchanged costs one ``stat``; a changed one is re-hashed;
only a changed hash is parsed again. So a folder of 10,000 advisories in which nothing
changed polls in a few tens of milliseconds (``benchmarks/poll.py``).

A file is read only once its writes have settled: its stat held for ``settle`` seconds
of the monotonic clock, and is the same after the read as before. A stat is trusted
(a later poll skips a file whose stat is the same) only once it held from one look to
the next: until then it is remembered as provisional and the file is hashed once more,
since a write in the same mtime tick as the one read could otherwise go unseen (the
"racy git" problem; some filesystems tick in whole seconds). No file time is ever
compared with the clock: on a network filesystem it is another machine's. A file still
being written is left for the next look (``IngestReport.unsettled``, with
``recheck_in``), so a half-written advisory is never stored, let alone mailed. Writers
that rename a finished file into place are safest: names starting with ``.`` or ending
in ``~`` or ``.tmp`` (editors' and copiers' temporary files) are never read.

A file that is rejected is not remembered, so it is reported again at every poll until
it is fixed. What is never read is reported once and remembered (until it changes): a
FIFO, socket or device (opening one could block the poll for ever), and a symlink that
leads outside the source folder (a folder of advisories must not become a way to read
any file the service can), unless the source lists the target in ``symlink_targets``.
A new version of Area Alerts, gazetteer or time zone re-reads every file once (the
``parser`` fingerprint). ``alerts ingest PATH`` always reads what it is given.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts import __version__
from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError, SourceError
from alerts.ingest.batch import IngestReport, Progress, save_parsed
from alerts.ingest.files import MAX_BYTES, parse_advisory_bytes
from alerts.ingest.settle import Settling, identity, is_advisory_name
from alerts.store import Store
from alerts.store.sources import SeenFile
from alerts.tagging import RULE_VERSION

#: ``source_files.parser`` of an entry that was refused (the rest is a hash of why).
REFUSED = "refused:"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refused:
    """An entry of a source folder that is never read, and why."""

    reason: str
    hint: str

    @property
    def mark(self) -> str:
        return REFUSED + hashlib.sha256(self.reason.encode()).hexdigest()[:32]


def ingest_directories(
    paths: Iterable[Path],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    zone: ZoneInfo,
    progress: Callable[[int], Progress] | None = None,
    symlink_targets: Mapping[Path, Sequence[Path]] | None = None,
    settle: float = 0.0,
    settling: Settling | None = None,
    max_deleted: Mapping[Path, int] | None = None,
) -> IngestReport:
    """Read the new and changed advisory files under ``paths`` and store them.

    A missing folder is a source error (reported, retried next poll). ``progress`` is
    called with the number of files to read, as for :func:`alerts.ingest.ingest_files`.
    ``symlink_targets``: per folder, the folders outside it its symlinks may lead to.
    A file written to less than ``settle`` seconds ago is not read yet (see above);
    ``settling`` remembers such files between looks (pass the same one each time).

    A file found deleted is remembered as gone (its advisory is withdrawn later, see
    :func:`alerts.ingest.withdraw_deleted`). A folder whose files all went at once (an
    unmounted share), or more than ``max_deleted`` of them (per folder; 0: no limit), is
    a source error: nothing is taken for deleted, and so nothing is ever withdrawn.
    """
    paths = list(paths)
    report = IngestReport()
    fingerprint = parser_fingerprint(gazetteer, zone)
    roots, found, refused = _scan_sources(paths, report, symlink_targets or {})
    seen = store.sources.seen_files(roots)
    remember = _report_refused(refused, seen, report)
    todo = _changed_files(found, seen, fingerprint, report)
    if settle > 0:
        if settling is None:
            raise ValueError("a settle time needs a Settling (made with the clock's monotonic)")
        todo = _settled(todo, settling, settle, report)
    advance = progress(len(todo)) if progress and todo else None
    reader = _Reader(store, gazetteer, fingerprint, now, zone, settle)
    for name, info, old in todo:
        read = reader.read(name, info, old, report)
        if read is not None:
            trusted = _held(old, info) and old is not None and old.sha256 == read
            mtime = info.st_mtime_ns if trusted else provisional(info.st_mtime_ns)
            remember[name] = SeenFile(mtime, info.st_size, read, fingerprint)
        if advance:
            advance(1)
    vanished = [name for name in seen if name not in found and name not in refused]
    vanished = _deletions(paths, vanished, seen, found, max_deleted or {}, report)
    store.sources.save_seen_files(remember, forget=[], now=now)
    store.sources.mark_gone(vanished, now)
    return report


def look_unsettled(
    paths: Iterable[Path],
    store: Store,
    gazetteer: Gazetteer,
    *,
    zone: ZoneInfo,
    settle: float,
    settling: Settling,
    symlink_targets: Mapping[Path, Sequence[Path]] | None = None,
) -> IngestReport:
    """Look at the new and changed files under ``paths`` as :func:`ingest_directories`
    would, and read and store nothing: those still being written are in
    ``report.unsettled``, with ``report.recheck_in`` (no other field is filled in). What
    settled stays so in ``settling``, for the look that reads them."""
    report = IngestReport()
    roots, found, _ = _scan_sources(list(paths), report, symlink_targets or {})
    seen = store.sources.seen_files(roots)
    todo = _changed_files(found, seen, parser_fingerprint(gazetteer, zone), report)
    _settled(todo, settling, settle, report, keep=True)
    return IngestReport(unsettled=report.unsettled, recheck_in=report.recheck_in)


def _deletions(
    paths: Iterable[Path],
    vanished: list[str],
    seen: Mapping[str, SeenFile],
    found: Mapping[str, os.stat_result],
    limits: Mapping[Path, int],
    report: IngestReport,
) -> list[str]:
    """The files to take for deleted: not those of a folder that emptied at once, nor of
    one that lost more than its limit in one look (each a source error instead)."""
    kept: list[str] = []
    for path in paths:
        if not path.is_dir():
            continue
        prefix = str(path).rstrip(os.sep) + os.sep
        gone = [name for name in vanished if name.startswith(prefix)]
        if not gone:
            continue
        limit = limits.get(path, 0)
        if not any(name.startswith(prefix) for name in found):
            reason = f"the folder is empty, but held {len(gone)} advisory files at the last look"
        elif limit and len(gone) > limit:
            reason = (
                f"{len(gone)} advisory files were deleted at once (more than surge_limit, {limit})"
            )
        else:
            kept += gone
            continue
        report.source_errors.append(
            SourceError(
                f"{reason}: taken for a fault (an unmounted share?), nothing is withdrawn",
                where=str(path),
                hint="put the files back; to withdraw advisories, set 'status: withdrawn' in them",
            )
        )
    return kept


def _scan_sources(
    paths: Iterable[Path], report: IngestReport, symlink_targets: Mapping[Path, Sequence[Path]]
) -> tuple[list[str], dict[str, os.stat_result], dict[str, Refused]]:
    """The readable source folders (or files), every advisory file under them with its
    stat, and the entries refused. A missing or unreadable source is a source error in
    ``report``."""
    roots: list[str] = []
    found: dict[str, os.stat_result] = {}
    refused: dict[str, Refused] = {}
    for path in paths:
        if not path.exists():
            report.source_errors.append(
                SourceError(
                    "no such file or folder",
                    where=str(path),
                    hint="check 'sources:' in config.yaml",
                )
            )
            continue
        try:
            files = dict(scan(path, symlink_targets.get(path, ())))
        except OSError as exc:
            # Read as empty, every file under it would be forgotten and re-read later.
            report.source_errors.append(
                SourceError(
                    f"cannot read: {exc.strerror or exc}",
                    where=str(path),
                    hint="make it readable by the user running alerts",
                )
            )
            continue
        roots.append(str(path))
        for name, item in files.items():
            if isinstance(item, Refused):
                refused[name] = item
            else:
                found[name] = item
    return roots, found, refused


def _report_refused(
    refused: dict[str, Refused], seen: dict[str, SeenFile], report: IngestReport
) -> dict[str, SeenFile]:
    """Warn of each refused entry not already reported for the same reason; returns
    what to remember of them, so the next polls stay quiet."""
    remember: dict[str, SeenFile] = {}
    for name, why in refused.items():
        old = seen.get(name)
        if old is None or old.parser != why.mark:
            warning = f"{name}: {why.reason}; skipped ({why.hint})"
            log.warning("%s", warning)
            report.warnings.append(warning)
            remember[name] = SeenFile(0, 0, "", why.mark)
    return remember


def _changed_files(
    found: dict[str, os.stat_result],
    seen: dict[str, SeenFile],
    fingerprint: str,
    report: IngestReport,
) -> list[tuple[str, os.stat_result, SeenFile | None]]:
    """The files whose stat (or the parser) changed since they were last seen; the rest
    are counted unchanged."""
    todo = []
    for name, info in found.items():
        old = seen.get(name)
        if (
            old
            and old.parser == fingerprint
            and old.mtime_ns == info.st_mtime_ns
            and old.size == info.st_size
        ):
            report.unchanged += 1
        else:
            todo.append((name, info, old))
    return todo


def provisional(mtime_ns: int) -> int:
    """How an mtime is remembered until it held from one look to the next: a value no
    real stat has (negative), from which the mtime can be told."""
    return -mtime_ns - 2


def _held(old: SeenFile | None, info: os.stat_result) -> bool:
    """Did the file keep the stat it had at the last look (remembered as provisional)?"""
    return (
        old is not None
        and old.mtime_ns == provisional(info.st_mtime_ns)
        and old.size == info.st_size
    )


def _settled(
    todo: list[tuple[str, os.stat_result, SeenFile | None]],
    settling: Settling,
    settle: float,
    report: IngestReport,
    *,
    keep: bool = False,
) -> list[tuple[str, os.stat_result, SeenFile | None]]:
    """The changed files whose writes have settled; the others go to ``report.unsettled``.
    A file whose stat held since the last look settled already. ``keep``: those that
    settled stay so in ``settling`` (a look that reads nothing)."""
    ready = []
    until_settled = settling.remaining if keep else settling.wait
    for name, info, old in todo:
        if not _held(old, info) and (wait := until_settled(name, info, settle)):
            _unsettled(report, name, wait)
        else:
            ready.append((name, info, old))
    return ready


def _unsettled(report: IngestReport, name: str, wait: float) -> None:
    report.unsettled.append(name)
    report.recheck_in = wait if report.recheck_in is None else min(report.recheck_in, wait)


@dataclass(frozen=True)
class _Reader:
    """Reads changed files of one poll and stores their advisories."""

    store: Store
    gazetteer: Gazetteer
    fingerprint: str
    now: datetime
    zone: ZoneInfo
    settle: float

    def read(
        self, name: str, info: os.stat_result, old: SeenFile | None, report: IngestReport
    ) -> str | None:
        """Read one file and store its advisory unless its bytes are as last seen.
        Returns its SHA-256 to remember, or None when it could not be read or was being
        written to as it was read (so it is read again next look). A rejected file is
        remembered too: it is reported once per change of its contents, not at every
        look (a 50 MB file is not read again until it changes)."""
        try:
            with open(name, "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
                after = os.fstat(handle.fileno())
        except OSError as exc:
            report.rejected.append(
                AdvisoryError(f"cannot read file: {exc.strerror or exc}", where=name)
            )
            return None
        if self.settle and (
            identity(after) != identity(info) or len(data) != min(after.st_size, MAX_BYTES + 1)
        ):
            # Written to while it was read: what was read may be cut short.
            _unsettled(report, name, self.settle)
            return None
        digest = hashlib.sha256(data).hexdigest()
        if old and old.sha256 == digest and old.parser == self.fingerprint:
            report.unchanged += 1  # touched, not changed
            return digest
        parse = functools.partial(
            parse_advisory_bytes, data, name, self.gazetteer, now=self.now, zone=self.zone
        )
        batch = save_parsed([(name, parse)], self.store, self.gazetteer, self.now)
        report.merge(batch)
        return digest


def scan(
    root: Path, symlink_targets: Sequence[Path] = ()
) -> Iterator[tuple[str, os.stat_result | Refused]]:
    """Advisory files under ``root`` (or ``root`` itself) with their stat, and the
    entries refused with why; hidden files and folders are skipped. A symlink is
    followed only when it leads inside ``root`` (a symlinked folder there is not: it
    is read already) or into one of ``symlink_targets``. Raises OSError when ``root``
    itself cannot be read."""
    if not root.is_dir():
        yield str(root), root.stat()
        return
    real_root = os.path.realpath(root)
    allowed = [real_root, *(os.path.realpath(target) for target in symlink_targets)]
    visited = {real_root}
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            if folder == str(root):
                raise  # the source itself: the caller reports it
            continue  # vanished or unreadable mid-scan; the next poll sees it again
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                yield from _entry(entry, real_root, allowed, visited, stack)
            except OSError:
                continue


def _entry(
    entry: os.DirEntry[str], real_root: str, allowed: list[str], visited: set[str], stack: list[str]
) -> Iterator[tuple[str, os.stat_result | Refused]]:
    """One folder entry as :func:`scan` sees it (a folder to walk goes on ``stack``)."""
    advisory = is_advisory_name(entry.name)
    if entry.is_symlink():
        target = os.path.realpath(entry.path)
        if not _inside(target, allowed):
            if advisory or os.path.isdir(target):
                yield (
                    entry.path,
                    Refused(
                        f"a symlink to {target}, outside the source folder",
                        "list the target's folder in 'symlink_targets' of this source to read it",
                    ),
                )
            return
        info = os.stat(target)
        if stat.S_ISDIR(info.st_mode):
            if not _inside(target, [real_root]) and target not in visited:
                visited.add(target)  # a loop of links is walked once
                stack.append(entry.path)
            return
    elif entry.is_dir(follow_symlinks=False):
        stack.append(entry.path)
        return
    elif not advisory:
        return
    else:
        info = entry.stat(follow_symlinks=False)
    if not advisory:
        return
    if stat.S_ISREG(info.st_mode):
        yield entry.path, info
    else:
        yield (
            entry.path,
            Refused(
                f"a {_kind(info.st_mode)}, not a file",
                "an advisory is a plain file: move this out of the folder",
            ),
        )


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(
        path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def parser_fingerprint(gazetteer: Gazetteer, zone: ZoneInfo) -> str:
    """Changes when what a file parses to could change without the file changing."""
    payload = repr((__version__, RULE_VERSION, str(zone), gazetteer.fingerprint)).encode()
    return hashlib.sha256(payload).hexdigest()[:32]
