"""The source lifecycle: healthy, failing, surging, as one table.

Each poll of a source (a folder looked at, a feed fetched) is one event, and an operator's
release or drop of a held batch is another. :data:`TABLE` gives, for each state and event,
the next state and what happens to the advisories the poll brought (or the batch held):

=========  ===================  ==================  ==================  ==================  =================  =================
state      first poll           poll                surge               failed poll         release            drop
=========  ===================  ==================  ==================  ==================  =================  =================
healthy    healthy, baseline    healthy, accept     surging, hold       failing, nothing    healthy, nothing   healthy, nothing
failing    healthy, baseline    healthy, accept     surging, hold       failing, nothing    failing, nothing   failing, nothing
surging    surging, hold        surging, hold       surging, hold       surging, nothing    healthy, release   healthy, drop
=========  ===================  ==================  ==================  ==================  =================  =================

* *first poll*: the first poll that read a feed at all. What it brings is its
  *baseline*: published (feeds, archive) but mailed to nobody, however new, so adding a
  feed never mails its backlog. A folder is the operator's own (every file in it is
  meant to go out): its first look is a poll, a surge if it is full.
* *surge*: a poll that brought more new, recent (mailable) advisories than the source's
  ``surge_limit`` (for a folder: counted over the last minute, as files arrive one by one).
  The batch is *held*: neither mailed nor published. While the source surges, whatever
  else it brings joins the held batch, until an operator releases it (``alerts sources
  release NAME``: mailed and published, the flood guard still limiting each inbox) or
  drops it (``alerts sources drop NAME``: kept, so never new again, but never mailed or
  published).
* A failed poll leaves a held batch held: the hold is what the operator must see.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alerts.types import SourceState

__all__ = ["TABLE", "BatchAction", "SourceEvent", "SourceState", "Surge", "poll_event", "step"]


class SourceEvent(enum.StrEnum):
    FIRST_POLL = "first poll"
    POLL = "poll"
    SURGE = "surge"
    FAILED = "failed poll"
    RELEASE = "release"
    DROP = "drop"


class BatchAction(enum.StrEnum):
    """What happens to the advisories a poll brought (or to the held batch)."""

    #: Mailed and published as usual.
    ACCEPT = "accept"
    #: Published, never mailed (a source's first poll).
    BASELINE = "baseline"
    #: Neither mailed nor published, until released or dropped.
    HOLD = "hold"
    #: The held batch is mailed and published.
    RELEASE = "release"
    #: The held batch is never mailed or published.
    DROP = "drop"
    NOTHING = "nothing"


S, E, A = SourceState, SourceEvent, BatchAction

#: (state, event) -> (next state, action). Every pair is listed.
TABLE: dict[tuple[SourceState, SourceEvent], tuple[SourceState, BatchAction]] = {
    (S.HEALTHY, E.FIRST_POLL): (S.HEALTHY, A.BASELINE),
    (S.HEALTHY, E.POLL): (S.HEALTHY, A.ACCEPT),
    (S.HEALTHY, E.SURGE): (S.SURGING, A.HOLD),
    (S.HEALTHY, E.FAILED): (S.FAILING, A.NOTHING),
    (S.HEALTHY, E.RELEASE): (S.HEALTHY, A.NOTHING),
    (S.HEALTHY, E.DROP): (S.HEALTHY, A.NOTHING),
    (S.FAILING, E.FIRST_POLL): (S.HEALTHY, A.BASELINE),
    (S.FAILING, E.POLL): (S.HEALTHY, A.ACCEPT),
    (S.FAILING, E.SURGE): (S.SURGING, A.HOLD),
    (S.FAILING, E.FAILED): (S.FAILING, A.NOTHING),
    (S.FAILING, E.RELEASE): (S.FAILING, A.NOTHING),
    (S.FAILING, E.DROP): (S.FAILING, A.NOTHING),
    (S.SURGING, E.FIRST_POLL): (S.SURGING, A.HOLD),
    (S.SURGING, E.POLL): (S.SURGING, A.HOLD),
    (S.SURGING, E.SURGE): (S.SURGING, A.HOLD),
    (S.SURGING, E.FAILED): (S.SURGING, A.NOTHING),
    (S.SURGING, E.RELEASE): (S.HEALTHY, A.RELEASE),
    (S.SURGING, E.DROP): (S.HEALTHY, A.DROP),
}
del S, E, A


@dataclass(frozen=True)
class Surge:
    """A source holding a batch: its label and how many advisories are held."""

    source: str
    held: int

    def warning(self) -> str:
        return (
            f"source {self.source} is surging: {self.held} new advisories held, neither mailed nor published;"
            f" check them ('alerts advisories list --held'), then 'alerts sources release {self.source}'"
            f" or 'alerts sources drop {self.source}'"
        )


def step(state: SourceState, event: SourceEvent) -> tuple[SourceState, BatchAction]:
    """The next state of a source and what to do with its batch."""
    return TABLE[(state, event)]


def poll_event(*, read: bool, first: bool, mailable: int, limit: int) -> SourceEvent:
    """The event a poll is: ``read`` whether the source could be read, ``first`` whether it
    was never read before, ``mailable`` the new, recent advisories it brought (for a folder,
    in the last minute), ``limit`` the source's ``surge_limit`` (0: never a surge)."""
    if not read:
        return SourceEvent.FAILED
    if first:
        return SourceEvent.FIRST_POLL
    if limit and mailable > limit:
        return SourceEvent.SURGE
    return SourceEvent.POLL
