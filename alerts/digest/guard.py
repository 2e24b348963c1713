"""The flood guard: no subscriber gets more than a few separate alerts in any hour.

A subscriber may be sent at most ``digests.alerts_per_hour`` immediate alerts, and
``digests.urgent_per_hour`` urgent ones, in any hour (counted over the outbox: what was
queued for them in the hour before now). What comes past the limit waits (*held*: a
``subscriber_advisories`` row at :data:`HELD`, and their watermark stays put) and, once
the hour is up (a slot in the hour frees), goes as one *gathered* message, "N more alerts
for Chatham", listing each title and link. The gathered message counts as one alert, so
"at most N in any hour" holds however many advisories arrive.

This module only decides (:func:`split_entries`, plain data in and out); planning and
queueing (:mod:`alerts.digest.plan`, :mod:`alerts.digest.queue`) act on its answer.
Daily and weekly digests are not limited: a held urgent alert a digest carries first
is sent there and not gathered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from alerts.digest.plan import HELD, Entry

__all__ = ["HELD", "WINDOW", "Limits", "Recent", "Split", "split_entries"]

#: The span the limits are counted over.
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Limits:
    """Separate messages a subscriber may get in any hour: alerts (immediate and
    gathered) and urgent alerts, each counted on its own."""

    alerts: int
    urgent: int


@dataclass(frozen=True)
class Recent:
    """What was queued for one subscriber in the last hour."""

    alerts: int = 0
    urgent: int = 0


@dataclass(frozen=True)
class Split:
    """What one subscriber gets now: ``singles`` each its own message, ``gathered`` in
    one message (empty: none), ``held`` to wait for the hour to be up."""

    singles: list[Entry] = field(default_factory=list)
    gathered: list[Entry] = field(default_factory=list)
    held: list[Entry] = field(default_factory=list)


def split_entries(
    entries: Sequence[Entry], urgent: set[int], recent: Recent, limits: Limits
) -> Split:
    """Split what is new for a subscriber (in the planner's order) into separate alerts,
    one gathered message and what is held.

    * Urgent advisories go one by one while the urgent limit allows; past it they wait
      with the rest.
    * When nothing is waiting, other advisories go one by one while the alert limit
      allows; the rest wait.
    * When something was already waiting (``Entry.held``) and a slot is free (the hour
      is up), everything waiting and new goes in one gathered message; with no slot free,
      it all keeps waiting.
    """
    urgent_free = max(0, limits.urgent - recent.urgent)
    alerts_free = max(0, limits.alerts - recent.alerts)
    singles: list[Entry] = []
    rest: list[Entry] = []
    for entry in entries:
        if entry.advisory_id in urgent and not entry.held and urgent_free > 0:
            singles.append(entry)
            urgent_free -= 1
        else:
            rest.append(entry)
    if not rest:
        return Split(singles=singles)
    waiting = any(entry.held for entry in rest) or any(
        entry.advisory_id in urgent for entry in rest
    )
    if not waiting and len(rest) <= alerts_free:
        return Split(singles=singles + rest)
    if waiting:
        if alerts_free > 0:
            return Split(singles=singles, gathered=rest)
        return Split(singles=singles, held=rest)
    return Split(singles=singles + rest[:alerts_free], held=rest[alerts_free:])
