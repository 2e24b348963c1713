"""Ingest: read advisories from their sources and save them in the store.

Each kind of source has its own module that yields advisories (``files`` for advisory
files, ``directory`` for the folders polled, ``upstream`` for feeds); ``batch`` runs a
batch: one bad advisory is reported and skipped, never fatal, and the batch ends with a
report of what happened. :func:`ingest_sources` reads every configured source.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from alerts.areas import Gazetteer
from alerts.config import Config
from alerts.ingest.batch import (
    IngestReport,
    Progress,
    find_advisory_files,
    ingest_files,
    save_parsed,
    store_advisory,
)
from alerts.ingest.directory import ingest_directories
from alerts.ingest.upstream import ingest_feeds
from alerts.store import Store

__all__ = [
    "IngestReport",
    "Progress",
    "find_advisory_files",
    "ingest_directories",
    "ingest_feeds",
    "ingest_files",
    "ingest_sources",
    "save_parsed",
    "store_advisory",
]


def ingest_sources(
    config: Config,
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    progress: Callable[[int], Progress] | None = None,
) -> IngestReport:
    """Ingest from every source in the config. A source that fails is reported; the
    others go on."""
    report = IngestReport()
    paths = [source.path for source in config.sources if source.path is not None]
    if paths:
        # Configured folders are polled: only new and changed files are read.
        report.merge(ingest_directories(paths, store, gazetteer, now=now, zone=config.tz, progress=progress))
    feeds = [source for source in config.sources if source.feed is not None]
    if feeds:
        report.merge(ingest_feeds(feeds, store, gazetteer, now=now, site_url=config.site.base_url))
    return report
