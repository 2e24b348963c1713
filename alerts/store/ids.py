"""Lists for ``IN (...)`` clauses, in chunks: written once for every aggregate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

#: Values per ``IN (...)`` list: well under SQLite's variable limit.
CHUNK = 500

T = TypeVar("T")


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
