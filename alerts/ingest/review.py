"""Review before mailing (config ``review:``): which new advisories wait in the
console's inbox for a person, and what becomes of those nobody acted on.

An advisory waits (``Hold.REVIEW``) when it is new from a source listed in
``review.sources``, when its area decision carries a warning (``review.warnings``), or
when it would reach the whole force from a feed not in ``review.trusted``
(``review.force_wide_untrusted``). An editor may also hold any advisory by hand. While it
waits it is neither mailed nor published: the feeds and the archive say what subscribers
get, and a feed reader would show a wrongly placed advisory to the wrong area at once.

Every held advisory follows one table (:data:`TABLE`; a state-machine test runs it):

=========  =================  ===================  ====================  ==================
state      release            hold                 time up, release      time up, keep
=========  =================  ===================  ====================  ==================
free       free, nothing      waiting, hold        free, nothing         free, nothing
waiting    free, queue        waiting, nothing     free, queue           waiting, nothing
=========  =================  ===================  ====================  ==================

*release* is a person's (the console, ``alerts advisories release``); *time up* is the
scheduled job of ``alerts serve`` (``review``), once ``wait_minutes`` have passed since the
hold, for a source whose ``then`` is ``release`` (or ``keep``). An editor's own hold is
never released by time. "queue": the advisory counts as changed at the release, so the
next queueing of immediate alerts mails it; a release that found it free already (two
editors, or an editor and the job) does nothing, so it is queued once.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.config import ReviewConfig, SourceConfig
from alerts.ingest.surges import came_from
from alerts.store import Store
from alerts.types import Advisory, Hold

log = logging.getLogger("alerts.ingest.review")
#: The source an editor's hold names when the advisory came from no configured source
#: (one written in the console, or from a source since removed).
CONSOLE = "console"


class Reason(enum.StrEnum):
    """Why an advisory waits for a person (kept in its ``hold_detail``)."""

    SOURCE = "source"
    NO_PLACE = "no place"
    UNKNOWN_AREA = "unknown area"
    FORCE_WIDE_UNTRUSTED = "force-wide from an untrusted feed"
    EDITOR = "editor"


class ReviewState(enum.StrEnum):
    FREE = "free"
    WAITING = "waiting"


class ReviewEvent(enum.StrEnum):
    RELEASE = "release"
    HOLD = "hold"
    TIME_UP_RELEASE = "time up, release"
    TIME_UP_KEEP = "time up, keep"


class ReviewAction(enum.StrEnum):
    NOTHING = "nothing"
    HOLD = "hold"
    #: Released: it counts as changed now, so the next queueing mails it (once).
    QUEUE = "queue"


S, E, A = ReviewState, ReviewEvent, ReviewAction
#: (state, event) -> (next state, action). Every pair is listed.
TABLE: dict[tuple[ReviewState, ReviewEvent], tuple[ReviewState, ReviewAction]] = {
    (S.FREE, E.RELEASE): (S.FREE, A.NOTHING),
    (S.FREE, E.HOLD): (S.WAITING, A.HOLD),
    (S.FREE, E.TIME_UP_RELEASE): (S.FREE, A.NOTHING),
    (S.FREE, E.TIME_UP_KEEP): (S.FREE, A.NOTHING),
    (S.WAITING, E.RELEASE): (S.FREE, A.QUEUE),
    (S.WAITING, E.HOLD): (S.WAITING, A.NOTHING),
    (S.WAITING, E.TIME_UP_RELEASE): (S.FREE, A.QUEUE),
    (S.WAITING, E.TIME_UP_KEEP): (S.WAITING, A.NOTHING),
}
del S, E, A

#: What an editor is told of each reason.
WORDS: Mapping[str, str] = {
    Reason.SOURCE: "every advisory from this source waits for a person (review.sources)",
    Reason.NO_PLACE: "it names no place, so it would go to the whole force",
    Reason.UNKNOWN_AREA: "it declares an area the gazetteer does not know",
    Reason.FORCE_WIDE_UNTRUSTED: "it would reach the whole force, from a feed not in review.trusted",
    Reason.EDITOR: "held by an editor",
}


def reasons_for(item: Advisory, source: SourceConfig, review: ReviewConfig) -> list[Reason]:
    """Why ``item``, new from ``source``, must wait for a person (none: it need not)."""
    reasons: list[Reason] = []
    decision = item.decision
    if item.outside_coverage:
        return reasons  # never mailed or published anyway
    if source.label in review.sources:
        reasons.append(Reason.SOURCE)
    if review.warnings and decision is not None and item.area_override is None:
        if decision.no_place:
            reasons.append(Reason.NO_PLACE)
        if decision.unknown:
            reasons.append(Reason.UNKNOWN_AREA)
    if (
        review.force_wide_untrusted
        and source.feed is not None
        and source.label not in review.trusted
        and decision is not None
        and decision.force_wide
        and item.area_override is None
    ):
        reasons.append(Reason.FORCE_WIDE_UNTRUSTED)
    return reasons


def hold_for_review(
    store: Store,
    review: ReviewConfig,
    new: Mapping[SourceConfig, Sequence[int]],
    *,
    now: datetime,
) -> list[int]:
    """Hold, of each source's new advisories, those that must wait for a person (those
    held already, by a surge or as a baseline, are left as they are). Returns their ids."""
    held: list[int] = []
    for source, ids in new.items():
        if not ids:
            continue
        for item in store.advisories.load(ids).values():
            if item.hold is not None:
                continue
            reasons = reasons_for(item, source, review)
            if reasons:
                store.holds.hold(
                    [item.id],
                    Hold.REVIEW,
                    source=source.label,
                    now=now,
                    detail={"reasons": [reason.value for reason in reasons]},
                )
                held.append(item.id)
                log.info(
                    "advisory %d from %s waits for review: %s",
                    item.id,
                    source.label,
                    ", ".join(reasons),
                    extra={"ctx_source": source.label, "ctx_advisory": item.id},
                )
    return held


@dataclass(frozen=True)
class Settled:
    """What a person's hold or release did: ``changed`` False when it found the advisory
    already so (nothing to do), with what it was before, for the audit log."""

    changed: bool
    before: dict[str, Any]


def hold_by_editor(
    store: Store,
    sources: Sequence[SourceConfig],
    advisory_id: int,
    editor: str,
    *,
    now: datetime,
) -> Settled:
    """An editor's hold: the advisory waits until a person releases it (never by time)."""
    item = store.advisories.get(advisory_id)
    before = hold_record(item)
    if item.hold is not None:
        return Settled(False, before)  # held already (review, surge, replacement)
    # Named by its source's name, never by where it came from (a feed's URL may carry
    # credentials, and the hold's source is shown by 'alerts status' and /metrics).
    label = next((s.label for s in sources if came_from(s, item.source)), CONSOLE)
    changed = store.holds.hold_one(
        item.id,
        Hold.REVIEW,
        source=label,
        now=now,
        detail={"reasons": [Reason.EDITOR.value], "by": editor},
    )
    return Settled(changed, before)


def release_advisory(store: Store, advisory_id: int, *, now: datetime) -> Settled:
    """A person's release of an advisory held for review or as a replacement: the same
    rule for the console and ``alerts advisories release``. Only one of two releases at
    once changes anything (``changed``), so the advisory is queued once."""
    item = store.advisories.get(advisory_id)
    before = hold_record(item)
    if item.hold is Hold.REVIEW:
        return Settled(store.holds.release_one(item.id, Hold.REVIEW, now=now), before)
    if item.hold is Hold.REPLACEMENT:
        return Settled(store.holds.release_replacement(item.id, now=now), before)
    return Settled(False, before)


def settle_timeouts(store: Store, review: ReviewConfig, *, now: datetime) -> list[int]:
    """The scheduled job: release each advisory held for review whose source's
    ``wait_minutes`` have passed and whose ``then`` is ``release`` (an editor's own
    hold excepted). Returns the ids released (the next queueing mails them)."""
    released: list[int] = []
    for item in store.holds.waiting(Hold.REVIEW):
        reasons = (item.hold_detail or {}).get("reasons") or []
        if Reason.EDITOR.value in reasons or item.hold_at is None:
            continue
        minutes, then = review.timeout_for(item.hold_source or "")
        if then != "release" or item.hold_at + timedelta(minutes=minutes) > now:
            continue
        if store.holds.release_one(item.id, Hold.REVIEW, now=now):
            released.append(item.id)
            log.warning(
                "advisory %d from %s released: nobody reviewed it within %g minutes"
                " (review.then: release)",
                item.id,
                item.hold_source,
                minutes,
                extra={"ctx_advisory": item.id},
            )
    return released


def hold_record(item: Advisory) -> dict[str, Any]:
    """An advisory's hold as the audit log keeps it (before and after)."""
    return {
        "hold": None if item.hold is None else item.hold.value,
        "reasons": list((item.hold_detail or {}).get("reasons") or []),
    }


def reason_words(item: Advisory) -> list[str]:
    """Why an advisory held for review waits, in words."""
    reasons = (item.hold_detail or {}).get("reasons") or []
    words = [WORDS.get(reason, str(reason)) for reason in reasons]
    by = (item.hold_detail or {}).get("by")
    if by:
        words = [f"held by {by}" if w == WORDS[Reason.EDITOR] else w for w in words]
    return words
