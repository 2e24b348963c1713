"""Ingest: read advisories from their sources and save them in the store.

Each kind of source has its own module that yields advisories (``files`` for advisory
files, ``directory`` for the folders polled, ``upstream`` for feeds); ``batch`` runs a
batch: one bad advisory is reported and skipped, never fatal, and the batch ends with a
report of what happened. :func:`ingest_sources` reads every configured source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.areas import Gazetteer
from alerts.clock import Clock
from alerts.config import DigestsConfig, ReviewConfig, SiteConfig, SourceConfig
from alerts.ingest.batch import (
    IngestReport,
    Progress,
    find_advisory_files,
    ingest_files,
    save_parsed,
    store_advisory,
)
from alerts.ingest.directory import ingest_directories, look_unsettled
from alerts.ingest.review import hold_for_review
from alerts.ingest.settle import Settling
from alerts.ingest.surges import apply_lifecycle, came_from
from alerts.ingest.upstream import FeedFetches, fetch_feeds, ingest_feeds
from alerts.store import Store
from alerts.store.sources import SourcePoll

__all__ = [
    "MAX_SETTLE_WAIT",
    "FeedFetches",
    "IngestReport",
    "Progress",
    "fetch_sources",
    "find_advisory_files",
    "ingest_directories",
    "ingest_feeds",
    "ingest_files",
    "ingest_sources",
    "save_parsed",
    "settle_sources",
    "store_advisory",
]

log = logging.getLogger(__name__)

#: How long a one-off ingest waits (before the queue turn, :func:`settle_sources`) for
#: files still being written before leaving them for the next run.
MAX_SETTLE_WAIT = 10.0


def withdraw_deleted(
    sources: Collection[SourceConfig], store: Store, *, now: datetime
) -> IngestReport:
    """Withdraw the advisories of files deleted at least ``withdraw_deleted_hours`` ago
    (a folder's; not at all where it is null), and forget those files."""
    report = IngestReport()
    for source in sources:
        if source.path is None or source.withdraw_deleted_hours is None:
            continue
        gone = store.sources.gone_before(
            str(source.path), now - timedelta(hours=source.withdraw_deleted_hours)
        )
        if not gone:
            continue
        withdrawn = store.holds.withdraw_files(gone, now=now)
        store.sources.forget_files(gone)
        report.updated += withdrawn
        if withdrawn:
            report.warnings.append(
                f"{source.path}: {len(withdrawn)} advisories withdrawn, their files deleted"
                f" {source.withdraw_deleted_hours:g} h ago (ids {', '.join(map(str, withdrawn))})"
            )
    return report


def fetch_sources(
    sources: Sequence[SourceConfig],
    store: Store,
    *,
    clock: Clock,
    site: SiteConfig,
    only: Collection[str] | None = None,
) -> FeedFetches:
    """Fetch the feeds among ``sources`` (those whose label is in ``only``) and store
    nothing: the network half of :func:`ingest_sources`, done before the queue turn is
    taken (alerts.locking) and handed to it as ``fetches``."""
    chosen = [s for s in sources if s.feed is not None and (only is None or s.label in only)]
    if not chosen:
        return {}
    return fetch_feeds(chosen, store, monotonic=clock.monotonic, site_url=site.base_url)


def _by_settle_time(folders: Sequence[SourceConfig]) -> list[tuple[float, list[Path]]]:
    """The folders' paths grouped by settle time, shortest first: one look per group."""
    return [
        (settle, [s.path for s in folders if s.settle_seconds == settle and s.path is not None])
        for settle in sorted({source.settle_seconds for source in folders})
    ]


def settle_sources(
    sources: Sequence[SourceConfig],
    store: Store,
    gazetteer: Gazetteer,
    *,
    clock: Clock,
    zone: ZoneInfo,
    only: Collection[str] | None = None,
    wait: float = MAX_SETTLE_WAIT,
) -> Settling:
    """Wait until the new and changed files in the folders among ``sources`` (those
    whose label is in ``only``) have settled, at most ``wait`` seconds, and store
    nothing: what ``alerts run --once`` and ``alerts ingest`` do before they take the
    queue turn (alerts.locking), so a file still being written never keeps a console
    send or another process waiting. Returns the :class:`Settling` to hand to
    :func:`ingest_sources`, which reads at once what settled here; a file not settled
    by then is left for the next run. ``clock`` times the waits (its monotonic clock)."""
    settling = Settling(clock.monotonic)
    folders = [
        s
        for s in sources
        if s.path is not None and s.settle_seconds > 0 and (only is None or s.label in only)
    ]
    targets = {source.path: source.symlink_targets for source in folders if source.path is not None}
    deadline = clock.monotonic() + wait
    logged = False
    while folders:
        look = IngestReport()
        # Folders with the same settle time go in one look.
        for settle, paths in _by_settle_time(folders):
            look.merge(
                look_unsettled(
                    paths,
                    store,
                    gazetteer,
                    zone=zone,
                    settle=settle,
                    settling=settling,
                    symlink_targets=targets,
                )
            )
        pause = look.recheck_in
        if pause is None or clock.monotonic() + pause > deadline:
            break
        if not logged:
            log.info(
                "%d file(s) still being written (%s); waiting for them to settle, at most"
                " %g s, before taking the queue turn",
                len(look.unsettled),
                look.unsettled[0],
                wait,
            )
            logged = True
        time.sleep(pause)
    return settling


def ingest_sources(
    sources: Sequence[SourceConfig],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    clock: Clock,
    zone: ZoneInfo,
    site: SiteConfig,
    digests: DigestsConfig,
    review: ReviewConfig | None = None,
    progress: Callable[[int], Progress] | None = None,
    only: Collection[str] | None = None,
    settling: Settling | None = None,
    fetches: FeedFetches | None = None,
) -> IngestReport:
    """Ingest from every source in ``sources`` (the config's ``sources:``; or those whose
    label is in ``only``). A source that fails is reported; the others go on. Advisory
    dates without a zone are in ``zone``; a feed's links to ``site`` are its own pages;
    ``digests.max_age_days`` says which new advisories are too old to mail; ``review`` which
    new ones wait for a person (none when not given).

    Nothing is waited for here (it runs in the queue turn): a file still being written,
    by ``settling`` (``alerts serve``'s own, or :func:`settle_sources`'s, which waited
    for them before the turn), is left for a later look, listed in ``report.unsettled``
    with ``report.recheck_in``. Last, changes held back as too soon after an advisory's
    last update whose time has come become new revisions (to be mailed as updated).
    ``now`` is the run's business time; ``clock`` the one ``settling`` was made with.

    ``fetches`` are the feeds already fetched by :func:`fetch_sources` (a feed not
    among them is left for the next poll); without them, feeds are fetched here."""
    chosen = [s for s in sources if only is None or s.label in only]
    folders = [source for source in chosen if source.path is not None]
    settling = settling or Settling(clock.monotonic)
    targets = {source.path: source.symlink_targets for source in folders if source.path is not None}
    max_deleted = {source.path: source.surge_limit for source in folders if source.path is not None}
    report = IngestReport()
    # Only new and changed files are read, once their writes have settled; folders
    # with the same settle time go in one pass.
    for settle, paths in _by_settle_time(folders):
        report.merge(
            ingest_directories(
                paths,
                store,
                gazetteer,
                now=now,
                zone=zone,
                progress=progress,
                settle=settle,
                settling=settling,
                symlink_targets=targets,
                max_deleted=max_deleted,
            )
        )
    feeds = [source for source in chosen if source.feed is not None]
    if feeds:
        report.merge(
            ingest_feeds(
                feeds,
                store,
                gazetteer,
                now=now,
                monotonic=clock.monotonic,
                site_url=site.base_url,
                fetches=fetches,
            )
        )
    report.merge(withdraw_deleted(chosen, store, now=now))
    # A feed whose answer was dropped was not polled by this run (another process's
    # newer poll stands): neither its lifecycle nor its health moves.
    polled = [source for source in chosen if source.feed not in report.dropped]
    # Each source through its lifecycle: a first poll's advisories are its baseline, a
    # surge's are held (alerts.ingest.lifecycle).
    max_age = timedelta(days=digests.max_age_days)
    report.surges = apply_lifecycle(store, polled, report, now=now, max_age=max_age)
    report.warnings += [surge.warning() for surge in report.surges]
    # Of what was accepted, what must wait for a person first (review:, alerts.ingest.review).
    new = {
        source: [i for i, where in report.origins.items() if came_from(source, where)]
        for source in polled
    }
    for advisory_id in hold_for_review(store, review or ReviewConfig(), new, now=now):
        report.warnings.append(
            f"advisory {advisory_id} waits for review in the console (/admin) before it is mailed or published"
        )
    # Changes held back as too soon after an advisory's last update, whose time has come,
    # become new revisions (to be mailed as updated).
    report.updated += [
        i for i in store.advisories.release_held_updates(now) if i not in report.updated
    ]
    # Each source's health, for 'alerts status' and /metrics: a folder or feed failed
    # when a source error names it.
    failed = {error.where: error.message for error in report.source_errors}
    store.sources.record_polls(
        [
            SourcePoll(
                source.label,
                "folder" if source.path is not None else "feed",
                failed.get(str(source.path) if source.path is not None else source.feed),
            )
            for source in polled
        ],
        now,
    )
    return report
