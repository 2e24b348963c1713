"""Source state: what each source has already given, so a poll reads only what changed.

- Upstream feeds (``source_feeds``): the HTTP validators (ETag, Last-Modified) and the
  outcome of the last poll of each feed URL (:class:`UpstreamPoll`).
- Advisory files (``source_files``): the stat and SHA-256 of each file last read
  (:class:`SeenFile`).
- Every source's health (``source_health``): its polls, failures in a row and ever, its
  last success (:class:`SourceHealth`), for ``alerts status`` and ``/metrics``.

Not to be confused with :mod:`alerts.feeds.state`, which remembers the feeds we publish.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from alerts.store.ids import chunks
from alerts.store.schema import source_feeds, source_files, source_health


@dataclass(frozen=True)
class UpstreamPoll:
    """What we remember of an upstream feed between polls: its validators and last outcome."""

    etag: str | None = None
    last_modified: str | None = None
    status: int | None = None
    error: str | None = None
    #: A hash of the feed-level warnings last logged (see :func:`alerts.ingest.upstream.ingest_feed`).
    warned: str | None = None
    #: When the poll was recorded (the business time of the run that recorded it).
    fetched_at: datetime | None = None


@dataclass(frozen=True)
class SeenFile:
    """What was last read of an advisory file: its stat, its SHA-256 and the parser
    fingerprint it was read with."""

    mtime_ns: int
    size: int
    sha256: str
    parser: str | None


# -- health: each source's polls, for alerts status and /metrics ----------------------


@dataclass(frozen=True)
class SourcePoll:
    """One look at one source: its label, ``folder`` or ``feed``, and what went wrong."""

    source: str
    kind: str
    error: str | None = None


@dataclass(frozen=True)
class SourceHealth:
    source: str
    kind: str
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    failures: int
    failures_total: int
    polls_total: int
    last_error: str | None


class Sources:
    """What each source has already given, and each source's health (``store.sources``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upstream_poll(self, url: str) -> UpstreamPoll:
        """The last poll of the feed at ``url`` (all None: never polled)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(source_feeds).where(source_feeds.c.url == url))
                .mappings()
                .first()
            )
        if row is None:
            return UpstreamPoll()
        return UpstreamPoll(
            row["etag"],
            row["last_modified"],
            row["status"],
            row["error"],
            row["warned"],
            row["fetched_at"],
        )

    def save_upstream_poll(
        self,
        url: str,
        *,
        now: datetime,
        status: int | None,
        error: str | None,
        etag: str | None = None,
        last_modified: str | None = None,
        warned: str | None = None,
    ) -> None:
        """Record a poll. On failure (``error`` set) the validators from the last success
        (and what was last warned about the feed) are kept."""
        values: dict[str, Any] = {"fetched_at": now, "status": status, "error": error}
        if error is None:
            values |= {"etag": etag, "last_modified": last_modified, "warned": warned}
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(source_feeds.c.url).where(source_feeds.c.url == url)
            ).first()
            if exists:
                conn.execute(update(source_feeds).where(source_feeds.c.url == url).values(**values))
            else:
                conn.execute(insert(source_feeds).values(url=url, **values))

    def seen_files(self, roots: list[str] | None = None) -> dict[str, SeenFile]:
        """What was last seen of every file under ``roots`` (None: of every file)."""
        prefixes = tuple(root.rstrip(os.sep) + os.sep for root in roots or ())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    source_files.c.path,
                    source_files.c.mtime_ns,
                    source_files.c.size,
                    source_files.c.sha256,
                    source_files.c.parser,
                ).where(source_files.c.gone_at.is_(None))
            ).all()
        return {
            path: SeenFile(mtime_ns, size, sha256, parser)
            for path, mtime_ns, size, sha256, parser in rows
            if roots is None or path in roots or path.startswith(prefixes)
        }

    def save_seen_files(
        self, seen: dict[str, SeenFile], *, forget: list[str], now: datetime
    ) -> None:
        """Remember ``seen`` files and forget the ``forget`` ones (gone from disk), in one transaction."""
        if not seen and not forget:
            return
        names = [*seen, *forget]
        with self.engine.begin() as conn:
            for chunk in chunks(names):
                conn.execute(delete(source_files).where(source_files.c.path.in_(chunk)))
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

    def mark_gone(self, names: list[str], now: datetime) -> None:
        """These files were found deleted ``now`` (kept, so a withdrawal can wait)."""
        with self.engine.begin() as conn:
            for chunk in chunks(names):
                conn.execute(
                    update(source_files)
                    .where(source_files.c.path.in_(chunk), source_files.c.gone_at.is_(None))
                    .values(gone_at=now)
                )

    def gone_before(self, root: str, cutoff: datetime) -> list[str]:
        """The files under ``root`` found deleted at or before ``cutoff``."""
        prefix = root.rstrip(os.sep) + os.sep
        with self.engine.connect() as conn:
            return [
                path
                for (path,) in conn.execute(
                    select(source_files.c.path).where(
                        source_files.c.gone_at <= cutoff,
                        source_files.c.path.startswith(prefix, autoescape=True),
                    )
                )
            ]

    def forget_files(self, names: list[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in chunks(names):
                conn.execute(delete(source_files).where(source_files.c.path.in_(chunk)))

    def record_polls(self, polls: Iterable[SourcePoll], now: datetime) -> None:
        """Count each poll, and its failure (in a row, and ever); a success clears the run."""
        polls = list(polls)
        if not polls:
            return
        with self.engine.begin() as conn:
            for poll in polls:
                failed = poll.error is not None
                values: dict[str, Any] = {
                    "kind": poll.kind,
                    "last_poll_at": now,
                    "polls_total": source_health.c.polls_total + 1,
                    "failures": source_health.c.failures + 1 if failed else 0,
                    "failures_total": source_health.c.failures_total + (1 if failed else 0),
                    "last_error": poll.error,
                }
                if not failed:
                    values["last_ok_at"] = now
                changed = conn.execute(
                    update(source_health)
                    .where(source_health.c.source == poll.source)
                    .values(**values)
                ).rowcount
                if not changed:
                    conn.execute(
                        insert(source_health).values(
                            source=poll.source,
                            kind=poll.kind,
                            last_poll_at=now,
                            last_ok_at=None if failed else now,
                            failures=int(failed),
                            failures_total=int(failed),
                            polls_total=1,
                            last_error=poll.error,
                        )
                    )

    def healths(self) -> list[SourceHealth]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(source_health).order_by(source_health.c.source))
                .mappings()
                .all()
            )
        return [
            SourceHealth(**{key: row[key] for key in SourceHealth.__dataclass_fields__})
            for row in rows
        ]
