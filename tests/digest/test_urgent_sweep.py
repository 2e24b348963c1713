"""The urgent sweep: urgent alerts at once to daily and weekly subscribers, planned once.

Their watermarks belong to their digests and stay put, so the sweep keeps a mark of its
own (``queue_sweeps``): before it, every cycle until their next digest planned each of
the day's urgent alerts again for every one of them (8 s for 66,000 subscribers on
PostgreSQL, holding the queue turn, so the next urgent alert waited as long). These walk
the cycles with the clock moving: nothing is planned twice, nothing is missed (a
subscriber who comes back or changes areas, an alert the flood guard held), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import mailbox
from datetime import datetime, timedelta

from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.digest.queue import QueueReport
from alerts.store.sweeps import URGENT
from alerts.subscribers.validation import Preferences
from alerts.types import AdvisoryInput, Candidate, Frequency, Priority
from tests.support import NOW
from tests.support.digests import HOUR, advisory, save, subjects, subscribe
from tests.support.sections import Stages

MINUTE = timedelta(minutes=1)


class Looked:
    """The urgent sweep's candidates at each run: what it planned for, read from the
    real store (a recorder around it, not a stand-in)."""

    def __init__(self, stages: Stages) -> None:
        self.urgent: list[list[str]] = []
        real = stages.store.advisories.candidates
        titles: dict[int, str] = {}

        def recorded(
            *, after: datetime, until: datetime, max_age: timedelta, urgent_only: bool = False
        ) -> list[Candidate]:
            found = real(after=after, until=until, max_age=max_age, urgent_only=urgent_only)
            if urgent_only:
                for candidate in found:
                    if candidate.id not in titles:
                        titles[candidate.id] = stages.store.advisories.get(candidate.id).title
                self.urgent.append([titles[c.id] for c in found])
            return found

        stages.store.advisories.candidates = recorded  # type: ignore[method-assign]


def queue(stages: Stages, at: datetime, **limits: int) -> QueueReport:
    digests = stages.digests.model_copy(update=limits) if limits else stages.digests
    return queue_digests(
        stages.mail, digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=at
    )


def urgent(title: str) -> AdvisoryInput:
    return advisory(
        title.lower().replace(" ", "-"), title=title, areas=("medway",), priority=Priority.URGENT
    )


def test_an_urgent_alert_is_planned_for_daily_and_weekly_subscribers_once_not_at_every_cycle(
    stages: Stages,
) -> None:
    for name in ("ann", "bob"):
        subscribe(stages, f"{name}@example.org", ["chatham"], frequency=Frequency.DAILY)
    subscribe(stages, "cat@example.org", ["chatham"], frequency=Frequency.WEEKLY)
    looked = Looked(stages)
    save(stages, urgent("Dog loose in Chatham"), at=NOW - 5 * MINUTE)
    assert queue(stages, NOW).messages == 3
    assert stages.store.digests.swept_until(URGENT) == NOW

    # The cycles after it (a poll every few minutes) find nothing new to plan.
    for minutes in (5, 10, 15):
        assert queue(stages, NOW + minutes * MINUTE).messages == 0
    assert looked.urgent == [["Dog loose in Chatham"], [], [], []]

    # The next urgent alert goes at once, alone: the first is not planned again.
    save(stages, urgent("Gas leak in Chatham"), at=NOW + 20 * MINUTE)
    assert queue(stages, NOW + 21 * MINUTE).messages == 3
    assert looked.urgent[-1] == ["Gas leak in Chatham"]
    assert stages.store.digests.swept_until(URGENT) == NOW + 21 * MINUTE
    assert all(
        [s.removeprefix("Urgent: ") for s in got] == ["Dog loose in Chatham", "Gas leak in Chatham"]
        for got in subjects(stages).values()
    ), subjects(stages)

    # Sent a minute later (into the Maildir) and opened: each of them has each alert once.
    assert (
        send_pending(
            stages.delivery, stages.mail, stages.store, stages.clock, now=NOW + 22 * MINUTE
        ).sent
        == 6
    )
    inbox: dict[str, list[str]] = {}
    for message in mailbox.Maildir(stages.delivery.maildir, create=False):
        inbox.setdefault(str(message["To"]), []).append(str(message["Subject"]))
    assert {to: sorted(got) for to, got in inbox.items()} == {
        to: ["Urgent: Dog loose in Chatham", "Urgent: Gas leak in Chatham"]
        for to in ("ann@example.org", "bob@example.org", "cat@example.org")
    }


def test_a_coordinator_who_undoes_an_unsubscribe_gets_the_urgent_alert_sent_meanwhile_at_once(
    stages: Stages,
) -> None:
    coordinator = subscribe(
        stages, "coord@example.org", ["chatham"], frequency=Frequency.DAILY, forwardable=True
    )
    subscribe(stages, "ann@example.org", ["chatham"], frequency=Frequency.DAILY)
    left_at = NOW - 10 * MINUTE
    assert stages.store.subscribers.unsubscribe(coordinator.id, now=left_at)
    save(stages, urgent("Dog loose in Chatham"), at=NOW - 5 * MINUTE)
    assert queue(stages, NOW).messages == 1  # Ann; the coordinator had left
    assert queue(stages, NOW + 5 * MINUTE).messages == 0

    # The undo link restores the subscription with the watermark it left with.
    assert stages.store.subscribers.undo_unsubscribe(
        coordinator.id, left_at=left_at, now=NOW + 6 * MINUTE
    )
    assert stages.store.digests.swept_until(URGENT) is not None
    assert stages.store.digests.swept_until(URGENT) < NOW - 5 * MINUTE  # type: ignore[operator]
    report = queue(stages, NOW + 10 * MINUTE)
    assert report.messages == 1
    assert subjects(stages)["coord@example.org"] == ["Urgent: Dog loose in Chatham"]
    # Once: the cycle after sends nobody anything.
    assert queue(stages, NOW + 15 * MINUTE).messages == 0
    assert stages.store.digests.swept_until(URGENT) == NOW + 15 * MINUTE


def test_a_subscriber_who_adds_the_area_gets_its_urgent_alert_of_the_day_at_once(
    stages: Stages,
) -> None:
    dan = subscribe(stages, "dan@example.org", ["maidstone"], frequency=Frequency.WEEKLY)
    save(stages, urgent("Dog loose in Chatham"), at=NOW - 5 * MINUTE)
    assert queue(stages, NOW).messages == 0
    stages.store.subscribers.update(dan.id, Preferences(areas=("maidstone", "chatham")))
    assert queue(stages, NOW + 5 * MINUTE).messages == 1
    assert subjects(stages)["dan@example.org"] == ["Urgent: Dog loose in Chatham"]
    assert queue(stages, NOW + 10 * MINUTE).messages == 0

    # A change of name reopens nothing: the next cycle plans nothing and looks at nothing.
    looked = Looked(stages)
    stages.store.subscribers.update(dan.id, Preferences(name="Dan"))
    assert queue(stages, NOW + 15 * MINUTE).messages == 0
    assert looked.urgent == [[]]


def test_urgent_alerts_the_flood_guard_held_are_looked_at_again_until_they_went(
    stages: Stages,
) -> None:
    subscribe(stages, "ann@example.org", ["chatham"], frequency=Frequency.DAILY)
    limits = {"alerts_per_hour": 1, "urgent_per_hour": 1}
    save(stages, urgent("Urgent A"), at=NOW - 5 * MINUTE)
    assert queue(stages, NOW, **limits).messages == 1
    # Past the urgent limit the alert slot carries the next two in one message.
    save(stages, urgent("Urgent B"), at=NOW + MINUTE)
    save(stages, urgent("Urgent C"), at=NOW + 2 * MINUTE)
    assert queue(stages, NOW + 3 * MINUTE, **limits).messages == 1
    assert stages.store.digests.swept_until(URGENT) == NOW + 3 * MINUTE
    # No slot left: D is held, and the sweep does not record past it, so each cycle
    # looks at it again until the alert slot frees (an hour after the gathered message).
    save(stages, urgent("Urgent D"), at=NOW + 5 * MINUTE)
    for minutes in (6, 10, 30):
        report = queue(stages, NOW + minutes * MINUTE, **limits)
        assert (report.messages, report.held) == (0, 1)
        assert stages.store.digests.swept_until(URGENT) == NOW + 3 * MINUTE
    later = queue(stages, NOW + HOUR + 4 * MINUTE, **limits)
    assert (later.messages, later.held) == (1, 0)
    assert stages.store.digests.swept_until(URGENT) == NOW + HOUR + 4 * MINUTE
    assert subjects(stages)["ann@example.org"] == [
        "Urgent: Urgent A",
        "2 more alerts for Chatham",
        "1 more alert for Chatham",
    ]
    assert queue(stages, NOW + 2 * HOUR, **limits).messages == 0


def test_a_sweep_never_records_over_a_reopening_made_while_it_ran(stages: Stages) -> None:
    eve = subscribe(stages, "eve@example.org", ["maidstone"], frequency=Frequency.DAILY, at=NOW)
    digests = stages.store.digests
    assert digests.record_sweep(URGENT, seen=None, until=NOW + MINUTE)
    seen = digests.swept_until(URGENT)
    # While a sweep that read ``seen`` runs, Eve adds an area: the mark goes back to her
    # watermark, and the sweep's record does not overwrite it.
    stages.store.subscribers.update(eve.id, Preferences(areas=("chatham",)))
    assert digests.swept_until(URGENT) == NOW
    assert not digests.record_sweep(URGENT, seen=seen, until=NOW + 2 * MINUTE)
    assert digests.swept_until(URGENT) == NOW
    assert digests.record_sweep(URGENT, seen=NOW, until=NOW + 3 * MINUTE)
    assert digests.swept_until(URGENT) == NOW + 3 * MINUTE
