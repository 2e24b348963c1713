"""Directory sources: configured folders of advisory files, polled cheaply.

What was last seen of each file (mtime, size, SHA-256) is kept in ``source_files``. A
file whose mtime and size are unchanged costs one ``stat``; a changed one is re-hashed;
only a changed hash is parsed again. So a folder of 10,000 advisories in which nothing
changed polls in a few tens of milliseconds (``benchmarks/poll.py``).

A file that is rejected is not remembered, so it is reported again at every poll until
it is fixed. A new version of Area Alerts, gazetteer or time zone re-reads every file
once (the ``parser`` fingerprint). ``alerts ingest PATH`` always reads what it is given.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, select

from alerts import __version__
from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError, SourceError
from alerts.ingest import IngestReport, Progress, save_parsed
from alerts.ingest.files import MAX_BYTES, SUFFIXES, parse_advisory_bytes
from alerts.schema import source_files
from alerts.store import Store
from alerts.tagging import RULE_VERSION

# A file modified this close to the scan may change again within the same mtime tick
# unseen (the "racy git" problem), so its stat is not trusted at the next poll.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Seen:
    mtime_ns: int
    size: int
    sha256: str
    parser: str | None


def ingest_directories(
    paths: Iterable[Path],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    zone: ZoneInfo,
    progress: Callable[[int], Progress] | None = None,
) -> IngestReport:
    """Read the new and changed advisory files under ``paths`` and store them.

    A missing folder is a source error (reported, retried next poll). ``progress`` is
    called with the number of files to read, as for :func:`alerts.ingest.ingest_files`.
    """
    report = IngestReport()
    fingerprint = parser_fingerprint(gazetteer, zone)
    roots: list[str] = []
    found: dict[str, os.stat_result] = {}
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
            files = dict(scan(path))
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
        found.update(files)
    seen = load_seen(store.engine, roots)
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
    advance = progress(len(todo)) if progress and todo else None
    scanned_ns = time.time_ns()
    remember: dict[str, Seen] = {}
    for name, info, old in todo:
        try:
            with open(name, "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            report.rejected.append(
                AdvisoryError(f"cannot read file: {exc.strerror or exc}", where=name)
            )
            continue
        digest = hashlib.sha256(data).hexdigest()
        if old and old.sha256 == digest and old.parser == fingerprint:
            report.unchanged += 1  # touched, not changed
            batch = IngestReport()
        else:
            parse = functools.partial(
                parse_advisory_bytes, data, name, gazetteer, now=now, zone=zone
            )
            batch = save_parsed([(name, parse)], store, gazetteer, now)
            report.merge(batch)
        if not batch.rejected:
            racy = abs(scanned_ns - info.st_mtime_ns) < RACY_NS
            remember[name] = Seen(
                -1 if racy else info.st_mtime_ns, info.st_size, digest, fingerprint
            )
        if advance:
            advance(1)
    vanished = [name for name in seen if name not in found]
    save_seen(store.engine, remember, forget=vanished, now=now)
    return report


def scan(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Advisory files under ``root`` (or ``root`` itself) with their stat; hidden files
    and folders are skipped, symlinked folders are not followed. Raises OSError when
    ``root`` itself cannot be read."""
    if not root.is_dir():
        yield str(root), root.stat()
        return
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
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in SUFFIXES and entry.is_file():
                    yield entry.path, entry.stat()
            except OSError:
                continue


def parser_fingerprint(gazetteer: Gazetteer, zone: ZoneInfo) -> str:
    """Changes when what a file parses to could change without the file changing."""
    payload = repr((__version__, RULE_VERSION, str(zone), gazetteer.fingerprint)).encode()
    return hashlib.sha256(payload).hexdigest()[:32]


def load_seen(engine: Engine, roots: list[str]) -> dict[str, Seen]:
    """What was last seen of every file under ``roots``."""
    prefixes = tuple(root.rstrip(os.sep) + os.sep for root in roots)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                source_files.c.path,
                source_files.c.mtime_ns,
                source_files.c.size,
                source_files.c.sha256,
                source_files.c.parser,
            )
        ).all()
    return {
        path: Seen(mtime_ns, size, sha256, parser)
        for path, mtime_ns, size, sha256, parser in rows
        if path in roots or path.startswith(prefixes)
    }


def save_seen(engine: Engine, seen: dict[str, Seen], *, forget: list[str], now: datetime) -> None:
    if not seen and not forget:
        return
    names = [*seen, *forget]
    with engine.begin() as conn:
        for start in range(0, len(names), 500):
            conn.execute(
                delete(source_files).where(source_files.c.path.in_(names[start : start + 500]))
            )
        if seen:
            conn.execute(
                insert(source_files),
                [
                    {
                        "path": name,
                        "mtime_ns": s.mtime_ns,
                        "size": s.size,
                        "sha256": s.sha256,
                        "parser": s.parser,
                        "seen_at": now,
                    }
                    for name, s in seen.items()
                ],
            )
