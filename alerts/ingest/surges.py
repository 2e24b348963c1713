"""Each source's poll through its lifecycle (:mod:`alerts.ingest.lifecycle`): a first
poll's advisories are its baseline (published, not mailed); a surge's are held until an
operator releases or drops them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from alerts.config import SourceConfig
from alerts.ingest.batch import IngestReport
from alerts.ingest.lifecycle import BatchAction, SourceEvent, SourceState, Surge, poll_event, step
from alerts.store import Store
from alerts.types import Hold

log = logging.getLogger("alerts.ingest")

#: A folder's files arrive one look at a time: its surge is counted over this span.
FOLDER_SPAN = timedelta(minutes=1)


def where_of(source: SourceConfig) -> str:
    """What a source's advisories name as where they came from (a feed's URL, a folder's path)."""
    return str(source.path) if source.path is not None else str(source.feed)


def came_from(source: SourceConfig, where: str) -> bool:
    if source.feed is not None:
        # A feed's entries are "<url> entry <id>" (alerts.ingest.entries).
        return where == source.feed or where.startswith(source.feed + " entry ")
    folder = str(source.path)
    return where == folder or where.startswith(folder.rstrip("/") + "/")


def apply_lifecycle(
    store: Store,
    sources: Sequence[SourceConfig],
    report: IngestReport,
    *,
    now: datetime,
    max_age: timedelta,
) -> list[Surge]:
    """Move each polled source through its lifecycle by what this poll brought (the new
    advisories in ``report.origins``, its failures in ``report.source_errors``), hold or
    mark its batch as the table says, and return the sources now surging."""
    failed = {error.where for error in report.source_errors}
    lives = store.holds.lifecycles([source.label for source in sources])
    surges: list[Surge] = []
    for source in sources:
        life = lives.get(source.label)
        state = life.state if life else SourceState.HEALTHY
        read = where_of(source) not in failed
        new = [i for i, where in report.origins.items() if came_from(source, where)]
        if source.path is not None:
            mailable = store.holds.count_mailable_from(
                Path(source.path), since=now - FOLDER_SPAN, max_age=max_age
            )
        else:
            mailable = store.holds.count_mailable(new, max_age=max_age)
        # A feed's first poll is its baseline (someone else's history); a folder is the
        # operator's own, where every file is meant to go out: its first poll is a poll.
        first = source.feed is not None and not (life and life.read_before)
        event = poll_event(read=read, first=first, mailable=mailable, limit=source.surge_limit)
        after, action = step(state, event)
        if action is BatchAction.HOLD and new:
            store.holds.hold(new, Hold.SURGE, source=source.label, now=now)
        elif action is BatchAction.BASELINE and new:
            store.holds.hold(new, Hold.BASELINE, source=source.label, now=now)
        if after is not state:
            log.warning(
                "source %s: %s -> %s (%s)",
                source.label,
                state,
                after,
                event,
                extra={"ctx_source": source.label},
            )
        store.holds.set_state(
            source.label, "folder" if source.path is not None else "feed", after, now
        )
        if after is SourceState.SURGING:
            surges.append(Surge(source.label, store.holds.count_held(source.label, Hold.SURGE)))
    return surges


def settle_surge(store: Store, source: SourceConfig, event: SourceEvent, *, now: datetime) -> int:
    """An operator's release or drop of ``source``'s held batch, through the lifecycle:
    released, its advisories are mailed and published by the next run (as new: they
    changed ``now``); dropped, never. Returns how many there were (0: nothing held)."""
    life = store.holds.lifecycles([source.label]).get(source.label)
    state = life.state if life else SourceState.HEALTHY
    after, action = step(state, event)
    count = 0
    if action is BatchAction.RELEASE:
        count = store.holds.release_held(source.label, now=now)
    elif action is BatchAction.DROP:
        count = store.holds.drop_held(source.label, now=now)
    if after is not state:
        log.warning(
            "source %s: %s -> %s (%s, %d advisories)", source.label, state, after, event, count
        )
        store.holds.set_state(
            source.label, "folder" if source.path is not None else "feed", after, now
        )
    return count
