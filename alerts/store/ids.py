"""Id lists for ``IN (...)`` clauses, in chunks: written once for every aggregate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

#: Ids per ``IN (...)`` list: well under SQLite's variable limit.
CHUNK = 500


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    """``ids`` in lists of at most ``size``."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])
