"""When a file in a watched folder may be read: its writes have settled.

A file settled when this process saw the same stat (inode, size, mtime, ctime) for
``settle`` seconds of the monotonic clock. A file's times are never compared with the
clock: they come from the filesystem, and on a network filesystem from another
machine's clock, which may run ahead or behind by any amount. Names that editors and
copiers use while writing are never read at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from alerts.ingest.files import SUFFIXES


def is_advisory_name(name: str) -> bool:
    """Is a file of this name read as an advisory? Hidden files (``.name``), editor
    backups (``name~``) and temporary files (``name.tmp``) never are."""
    if name.startswith(".") or name.endswith(("~", ".tmp")):
        return False
    return os.path.splitext(name)[1].lower() in SUFFIXES


class Settling:
    """What was seen of files not yet settled, across looks (pass the same one each
    time); ``monotonic`` is the clock's."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._first: dict[str, tuple[tuple[int, int, int, int], float]] = {}

    def wait(self, name: str, info: os.stat_result, settle: float) -> float:
        """0 when the file settled (it is then forgotten), else the seconds to wait
        before looking again."""
        left = self.remaining(name, info, settle)
        if left == 0:
            self._first.pop(name, None)
        return left

    def remaining(self, name: str, info: os.stat_result, settle: float) -> float:
        """As :meth:`wait`, but a file that settled is remembered as settled: the look
        before the queue turn (:func:`alerts.ingest.settle_sources`) leaves it for the
        look inside it, which reads it at once unless it changed since."""
        if settle <= 0:
            return 0.0
        current, seen = identity(info), self._monotonic()
        first = self._first.get(name)
        if first is None or first[0] != current:
            # New, or changed since the last look: the quiet time starts now.
            self._first[name] = (current, seen)
            return settle
        held = seen - first[1]
        if held >= settle:
            return 0.0
        return max(settle - held, 0.01)


def identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
