"""When a file in a watched folder may be read: its writes have settled.

A file settled when the clock says nothing changed it (mtime or ctime) for ``settle``
seconds, or, where its times cannot be trusted (a network filesystem whose clock runs
ahead, a date in the future), when this process saw the same stat for that long.
Names that editors and copiers use while writing are never read at all.
"""

from __future__ import annotations

import os
import time

from alerts.ingest.files import SUFFIXES


def is_advisory_name(name: str) -> bool:
    """Is a file of this name read as an advisory? Hidden files (``.name``), editor
    backups (``name~``) and temporary files (``name.tmp``) never are."""
    if name.startswith(".") or name.endswith(("~", ".tmp")):
        return False
    return os.path.splitext(name)[1].lower() in SUFFIXES


class Settling:
    """What was seen of files not yet settled, across looks (pass the same one each time)."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[tuple[int, int, int, int], float]] = {}

    def wait(self, name: str, info: os.stat_result, now_ns: int, settle_ns: int) -> float:
        """0 when the file settled, else the seconds to wait before looking again."""
        if settle_ns <= 0:
            return 0.0
        age = now_ns - last_change_ns(info)
        if age >= settle_ns:
            self._first.pop(name, None)
            return 0.0
        current, seen = identity(info), time.monotonic()
        first = self._first.get(name)
        if first is None or first[0] != current:
            self._first[name] = (current, seen)
            first = self._first[name]
        held = seen - first[1]
        if held * 1e9 >= settle_ns:
            del self._first[name]
            return 0.0
        left = settle_ns / 1e9 - held
        if age >= 0:
            left = min(left, (settle_ns - age) / 1e9)
        return max(left, 0.01)


def last_change_ns(info: os.stat_result) -> int:
    """When the file last changed: its mtime, or its ctime when later (a copy that keeps
    the original's mtime still moves the ctime, which nobody can set back)."""
    return max(info.st_mtime_ns, info.st_ctime_ns)


def identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


