"""The message lifecycle (alerts.delivery.policy) and the reading of a relay's replies
into its events (alerts.delivery.verdicts), without a relay or a database: the table
itself, then random sequences of replies from relays that misbehave as real ones do,
with the clock moving, checked against the rules the table promises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from alerts.clock import ManualClock
from alerts.delivery.base import Stage
from alerts.delivery.policy import (
    ON_THE_WIRE,
    RELAY_EVENTS,
    TABLE,
    Charge,
    Event,
    Limits,
    State,
    Wait,
    decide,
    markdown_table,
)
from alerts.delivery.verdicts import Condemned, Decided, Verdicts

LIMITS = Limits(max_attempts=4, max_unanswered=2)


# -- the table -----------------------------------------------------------------------------


def test_only_the_relays_acceptance_makes_a_message_sent() -> None:
    to_sent = {
        (state, event)
        for (state, event), step in TABLE.items()
        if step.to is State.SENT and state != State.SENT
    }
    assert to_sent == {(State.SENDING, Event.ACCEPTED)}


def test_the_relays_trouble_never_spends_a_messages_attempts_and_never_ends_it() -> None:
    for event in RELAY_EVENTS:
        step = decide(
            State.SENDING, event, attempts=LIMITS.max_attempts - 1, unanswered=0, limits=LIMITS
        )
        assert step.charge is Charge.NOTHING, event
        assert step.to in (State.DEFERRED, State.SENDING, State.FAILED), event
        if event is not Event.REFUSED_FOR_RELAYING:  # relay took others: this one will not go
            assert step.to is not State.FAILED, event


def test_a_4xx_at_mail_from_and_the_same_4xx_in_a_row_pause_the_relay() -> None:
    assert ON_THE_WIRE[Event.TEMPORARY_AT_MAIL].pause_relay
    assert ON_THE_WIRE[Event.SAME_REPLY_IN_A_ROW].pause_relay
    assert ON_THE_WIRE[Event.TEMPORARY_AT_MAIL].wait is Wait.RELAY_BACKOFF
    assert not ON_THE_WIRE[Event.TEMPORARY_AT_RCPT].pause_relay


def test_a_message_deferred_for_its_own_sake_fails_when_its_attempts_are_used_up() -> None:
    early = decide(State.SENDING, Event.TEMPORARY_AT_RCPT, attempts=0, unanswered=0, limits=LIMITS)
    last = decide(
        State.SENDING,
        Event.TEMPORARY_AT_RCPT,
        attempts=LIMITS.max_attempts - 1,
        unanswered=0,
        limits=LIMITS,
    )
    assert (early.to, early.charge, early.wait) == (
        State.DEFERRED,
        Charge.ATTEMPT,
        Wait.MESSAGE_BACKOFF,
    )
    assert (last.to, last.charge) == (State.FAILED, Charge.ATTEMPT)


@pytest.mark.parametrize("event", [Event.LOST_AFTER_BODY, Event.REPLY_TIMEOUT])
def test_a_body_without_a_final_reply_is_tried_twice_more_then_unknown(event: Event) -> None:
    steps = [
        decide(State.SENDING, event, attempts=0, unanswered=n, limits=LIMITS) for n in range(3)
    ]
    assert [s.to for s in steps] == [State.DEFERRED, State.DEFERRED, State.UNKNOWN]
    assert {s.charge for s in steps} == {Charge.UNANSWERED}
    assert steps[0].wait is Wait.UNANSWERED_BACKOFF


def test_unknown_is_never_claimed_again_and_only_a_later_dsn_or_complaint_changes_it() -> None:
    leaving_unknown = {
        event
        for (state, event), step in TABLE.items()
        if state is State.UNKNOWN and step.to != state
    }
    assert leaving_unknown == {Event.LATER_BOUNCE}
    assert (State.UNKNOWN, Event.CLAIMED) not in TABLE


def test_a_later_bounce_counts_as_a_bounce_and_a_complaint_suppresses_at_once() -> None:
    assert TABLE[(State.SENT, Event.LATER_BOUNCE)].to is State.BOUNCED
    assert TABLE[(State.SENT, Event.LATER_BOUNCE)].bounce
    assert TABLE[(State.SENT, Event.COMPLAINT)].suppress
    assert TABLE[(State.SENT, Event.COMPLAINT)].to is State.SENT


def test_deferred_is_stored_as_pending_and_every_other_state_as_its_name() -> None:
    assert {s.stored for s in State} == {
        "pending",
        "sending",
        "sent",
        "unknown",
        "bounced",
        "failed",
        "suppressed",
    }


def test_the_readme_carries_the_lifecycle_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, (
        "run python -m alerts.delivery.policy and paste its table into README.md"
    )


# -- reading replies ------------------------------------------------------------------------


def events(decided: list[Decided[str]]) -> list[tuple[str, Event]]:
    return [(d.message, d.event) for d in decided]


def test_the_same_4xx_at_data_for_two_recipients_in_a_row_is_the_relays() -> None:
    v: Verdicts[str] = Verdicts()
    first = v.reply(
        "a", "ann@example.org", Stage.DATA, 451, "4.7.1 <ann@example.org> quota exceeded", "x"
    )
    second = v.reply(
        "b", "bob@example.net", Stage.DATA, 451, "4.7.1 <bob@example.net> quota exceeded", "y"
    )
    assert first == []
    assert events(second) == [("a", Event.SAME_REPLY_IN_A_ROW), ("b", Event.SAME_REPLY_IN_A_ROW)]


def test_a_4xx_at_data_followed_by_a_message_that_goes_is_that_messages_own() -> None:
    v: Verdicts[str] = Verdicts()
    v.reply("a", "ann@example.org", Stage.DATA, 451, "4.3.0 later", "x")
    assert events(v.accepted("b")) == [("a", Event.TEMPORARY_AT_DATA), ("b", Event.ACCEPTED)]


def test_a_4xx_at_mail_from_is_decided_at_once_as_the_relays() -> None:
    v: Verdicts[str] = Verdicts()
    assert events(
        v.reply("a", "ann@example.org", Stage.MAIL, 451, "4.7.1 Daily quota exceeded", "x")
    ) == [("a", Event.TEMPORARY_AT_MAIL)]


def test_three_5xx_at_mail_from_in_a_row_condemn_the_sender_and_hold_all_three() -> None:
    v: Verdicts[str] = Verdicts()
    v.reply("a", "a@x.org", Stage.MAIL, 550, "5.7.1 no", "x")
    v.reply("b", "b@x.org", Stage.MAIL, 550, "5.7.1 no", "x")
    with pytest.raises(Condemned) as caught:
        v.reply("c", "c@x.org", Stage.MAIL, 550, "5.7.1 no", "x")
    assert (caught.value.kind, caught.value.held) == ("sender", ["a", "b", "c"])


def test_a_session_lost_before_the_body_is_the_messages_only_once_the_relay_carries_another() -> (
    None
):
    v: Verdicts[str] = Verdicts()
    assert v.lost_session("a", Stage.DATA, "x") == []
    assert events(v.accepted("b")) == [("a", Event.LOST_BEFORE_BODY), ("b", Event.ACCEPTED)]
    v.lost_session("c", Stage.RCPT, "x")
    assert events(v.finish(stopped=False)) == [("c", Event.LOST_BEFORE_BODY_RELAY)]


# -- random relays, the clock moving -----------------------------------------------------------

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
RECIPIENTS = [f"r{i}@d{i % 3}.example" for i in range(6)]
#: What the relay does to one message: (name, stage, code) with code None for no reply.
BEHAVIOURS = {
    "accept": (Stage.BODY, 250),
    "quota at MAIL": (Stage.MAIL, 451),
    "no such user": (Stage.RCPT, 550),
    "greylisted": (Stage.RCPT, 450),
    "throttled at DATA": (Stage.DATA, 451),
    "drops before the body": (Stage.DATA, None),
    "drops after the body": (Stage.BODY, None),
    "refuses the content": (Stage.BODY, 554),
    "unreachable": (Stage.CONNECT, None),
}


@dataclass
class Message:
    recipient: str
    state: State = State.PENDING
    attempts: int = 0
    unanswered: int = 0
    due: datetime = START
    copies: int = 0  # bodies that reached the relay (accepted or unanswered)
    accepted: bool = False
    relay_charged: int = 0  # attempts spent by events that are the relay's
    history: list[Event] = field(default_factory=list)
    ended: bool = False


ENDED = {State.SENT, State.UNKNOWN, State.BOUNCED, State.FAILED, State.SUPPRESSED}


class Lifecycle(RuleBasedStateMachine):
    """Runs of a sender against a relay whose behaviour changes at random, with the
    verdicts and the table deciding each message; business time moves between runs."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.messages = {f"m{i}": Message(RECIPIENTS[i]) for i in range(len(RECIPIENTS))}
        self.paused_until = START
        self.pauses = 0

    @rule(seconds=st.integers(min_value=1, max_value=6 * 3600))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @precondition(lambda self: any(m.state is State.SENT for m in self.messages.values()))
    @rule(data=st.data(), kind=st.sampled_from([Event.LATER_BOUNCE, Event.COMPLAINT]))
    def mail_comes_back(self, data: st.DataObject, kind: Event) -> None:
        sent = sorted(k for k, m in self.messages.items() if m.state is State.SENT)
        key = data.draw(st.sampled_from(sent))
        self._apply(key, kind)

    @rule(replies=st.lists(st.sampled_from(sorted(BEHAVIOURS)), min_size=1, max_size=8))
    def a_run(self, replies: list[str]) -> None:
        now = self.clock.now()
        if now < self.paused_until:
            return  # the pause is remembered: nothing is claimed
        due = [
            k
            for k, m in self.messages.items()
            if m.state in (State.PENDING, State.DEFERRED) and m.due <= now
        ]
        verdicts: Verdicts[str] = Verdicts()
        for key, name in zip(due, replies, strict=False):
            self._apply(key, Event.CLAIMED)
            stage, code = BEHAVIOURS[name]
            message = self.messages[key]
            if stage is Stage.BODY and code != 554:  # the body reached the relay
                message.copies += 1
                message.accepted = message.accepted or code == 250
            try:
                decided = self._reply(verdicts, key, message, stage, code)
            except Condemned as exc:
                decided = [Decided(str(k), Event.GIVEN_BACK, "condemned") for k in exc.held]
            if self._settle(decided):
                break
        self._settle(verdicts.finish(stopped=False))
        for message in self.messages.values():
            if message.state is State.SENDING:  # claimed, not tried: given back
                message.state = State.PENDING

    def _reply(
        self, v: Verdicts[str], key: str, message: Message, stage: Stage, code: int | None
    ) -> list[Decided[str]]:
        if code == 250:
            return v.accepted(key)
        if stage is Stage.CONNECT:
            return v.unavailable(key, "down")
        if code is None and stage is Stage.BODY:
            return v.unanswered(key, "dropped", timed_out=False)
        if code is None:
            return v.lost_session(key, stage, "dropped")
        return v.reply(
            key, message.recipient, stage, code, "4.7.1 busy" if code < 500 else "5.1.1 no", "x"
        )

    def _settle(self, decided: list[Decided[str]]) -> bool:
        paused = False
        for d in decided:
            paused |= self._apply(d.message, d.event)
        return paused

    def _apply(self, key: str, event: Event) -> bool:
        message = self.messages[key]
        before = message.state
        step = decide(
            before, event, attempts=message.attempts, unanswered=message.unanswered, limits=LIMITS
        )
        message.history.append(event)
        if step.to is State.SENT:
            assert message.accepted, "marked sent before the relay accepted it"
        if step.charge is Charge.ATTEMPT:
            message.attempts += 1
            if event in RELAY_EVENTS:
                message.relay_charged += 1
        elif step.charge is Charge.UNANSWERED:
            message.unanswered += 1
        now = self.clock.now()
        if step.wait is Wait.MESSAGE_BACKOFF:
            message.due = now + timedelta(seconds=60 * 2 ** max(message.attempts - 1, 0))
        elif step.wait is Wait.UNANSWERED_BACKOFF:
            message.due = now + timedelta(seconds=600 * 2 ** max(message.unanswered - 1, 0))
        elif step.wait is Wait.RELAY_BACKOFF:
            message.due = now + timedelta(seconds=60)
        if step.pause_relay:
            self.pauses += 1
            self.paused_until = now + timedelta(seconds=60 * 2 ** min(self.pauses, 8))
        # A connection limit keeps it on the wire for a new session: here, given back.
        step_to = State.PENDING if step.to is State.SENDING and before is State.SENDING else step.to
        message.state = step_to
        message.ended = message.ended or step_to in ENDED
        return step.pause_relay

    @invariant()
    def nothing_is_lost(self) -> None:
        assert len(self.messages) == len(RECIPIENTS)
        assert all(isinstance(m.state, State) for m in self.messages.values())

    @invariant()
    def the_relays_trouble_spends_no_attempt(self) -> None:
        assert all(m.relay_charged == 0 for m in self.messages.values())

    @invariant()
    def no_message_reaches_the_relay_more_than_a_bounded_number_of_times(self) -> None:
        for m in self.messages.values():
            assert m.copies <= 1 + LIMITS.max_unanswered
            assert m.attempts <= LIMITS.max_attempts

    @invariant()
    def nothing_is_sent_without_the_relays_acceptance(self) -> None:
        for m in self.messages.values():
            if m.state is State.SENT:
                assert m.accepted

    @invariant()
    def what_ended_stays_ended(self) -> None:
        """Sent, unknown, bounced, failed and suppressed messages are never due again."""
        for m in self.messages.values():
            if m.ended:
                assert m.state in ENDED, m.history


Lifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_message_lifecycle_over_random_relays = Lifecycle.TestCase
