"""The message lifecycle: one table of what each event does to an outbox message.

Everything that decides a message's fate reads this table (the dispatcher, the bounce
reader) and the README prints it (``python -m alerts.delivery.policy`` writes it as
Markdown). It is pure data and one pure function, :func:`decide`; the rest of delivery
works out which :class:`Event` happened (see :mod:`alerts.delivery.verdicts`) and writes
what the :class:`Step` says.

The rules it keeps:

- nothing is marked sent before the relay accepted it (only ``ACCEPTED`` leads to sent);
- the relay's trouble is the relay's: an event that is the relay's (:data:`RELAY_EVENTS`)
  pauses sending and never spends one of the message's attempts;
- a body that went out without a final reply may have been delivered: it is tried again
  at most ``max_unanswered`` times, then ``unknown``, never sent again by itself;
- later bounces and complaints count as the ones at RCPT TO do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.StrEnum):
    """Where a message is. The values are those stored in ``outbox.status``, except
    ``deferred``, which is stored as ``pending`` (with a later ``next_attempt_at``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    UNKNOWN = "unknown"  # the body went out, no final reply came, tries used up
    BOUNCED = "bounced"
    FAILED = "failed"
    SUPPRESSED = "suppressed"

    @property
    def stored(self) -> str:
        return "pending" if self is State.DEFERRED else self.value


class Event(enum.StrEnum):
    """What happens to a message, as the dispatcher reads a relay's replies."""

    CLAIMED = "claimed"
    GIVEN_BACK = "given back"  # claimed, not tried (a stop, the relay given up on)
    LEASE_EXPIRED = "lease expired"
    SUBSCRIBER_LEFT = "subscriber left"
    ACCEPTED = "accepted"  # 250 after the body
    # A temporary (4xx) or permanent (5xx) reply, by where it came. A 4xx at MAIL FROM
    # names no recipient yet: it is the relay's (its quota, its throttle).
    TEMPORARY_AT_MAIL = "4xx at MAIL FROM"
    PERMANENT_AT_MAIL = "5xx at MAIL FROM"
    TEMPORARY_AT_RCPT = "4xx at RCPT TO"
    PERMANENT_AT_RCPT = "5xx at RCPT TO"
    TEMPORARY_AT_DATA = "4xx at DATA"
    PERMANENT_AT_DATA = "5xx at DATA"
    TEMPORARY_AFTER_BODY = "4xx after the body"
    PERMANENT_AFTER_BODY = "5xx after the body"
    # A 5xx at RCPT TO that speaks of relaying, or that several recipients got alike:
    # the relay's rule for this account, which says nothing of the address.
    REFUSED_FOR_RELAYING = "refused for relaying"
    # The same 4xx for consecutive messages to different recipients (at DATA or after
    # the body): the relay's, like a 4xx at MAIL FROM.
    SAME_REPLY_IN_A_ROW = "the same 4xx in a row"
    # 421 or 452 on a connection that already carried messages: its per-connection limit.
    CONNECTION_LIMIT = "per-connection limit"
    # No session could be opened (refused, 4xx greeting, TLS or AUTH for now).
    RELAY_UNAVAILABLE = "relay unavailable"
    # The session ended before the body's final dot: the message was not taken. Whose
    # trouble it was shows by the next message: if the relay carries that, this one's.
    LOST_BEFORE_BODY = "lost before the body, relay working"
    LOST_BEFORE_BODY_RELAY = "lost before the body, relay not working"
    # The body went out and no final reply came: it may have been delivered.
    LOST_AFTER_BODY = "lost after the body"
    REPLY_TIMEOUT = "no final reply in time"
    # A reply whose meaning waited for a later message that never came: counted as the
    # message's own temporary failure, so that it neither fails for another's sake nor
    # holds the head of the queue.
    UNDECIDED = "undecided"
    BUILD_FAILED = "cannot build, for now"
    BUILD_REFUSED = "cannot build, for good"
    ATTEMPTS_USED = "attempts used up"
    # Later, by mail: a delivery status notification (Action: failed, 5.x.x) to the
    # message's own return path, or a feedback-loop (ARF) complaint.
    LATER_BOUNCE = "later DSN"
    COMPLAINT = "complaint"


class Charge(enum.StrEnum):
    """What an event spends of the message's allowance."""

    NOTHING = "nothing"
    ATTEMPT = "an attempt"  # of max_attempts: then failed
    UNANSWERED = "an unanswered try"  # of max_unanswered: then unknown


class Wait(enum.StrEnum):
    """When a message that goes back to the queue is due again."""

    AS_BEFORE = "as before"
    MESSAGE_BACKOFF = "message backoff"  # retry_base doubling per attempt, to retry_max
    RELAY_BACKOFF = "relay backoff"  # the relay's pause (doubling per pause in a row)
    UNANSWERED_BACKOFF = "unanswered backoff"  # unanswered_base doubling per try
    AT_ONCE = "at once"  # on a new connection


@dataclass(frozen=True)
class Step:
    """What an event does: the state it leads to and its side effects."""

    to: State
    charge: Charge = Charge.NOTHING
    wait: Wait = Wait.AS_BEFORE
    #: The relay's trouble: sending pauses (remembered across runs and processes).
    pause_relay: bool = False
    #: Counts towards the subscriber's hard bounces (max_bounces of them suppress).
    bounce: bool = False
    #: Suppresses the subscriber at once.
    suppress: bool = False


#: Events that are the relay's, never a message's: they spend no attempt.
RELAY_EVENTS = frozenset(
    {
        Event.TEMPORARY_AT_MAIL,
        Event.SAME_REPLY_IN_A_ROW,
        Event.CONNECTION_LIMIT,
        Event.RELAY_UNAVAILABLE,
        Event.LOST_BEFORE_BODY_RELAY,
        Event.REFUSED_FOR_RELAYING,
    }
)

_RETRY = Step(State.DEFERRED, Charge.ATTEMPT, Wait.MESSAGE_BACKOFF)
_RELAY = Step(State.DEFERRED, Charge.NOTHING, Wait.RELAY_BACKOFF)
_UNANSWERED = Step(State.DEFERRED, Charge.UNANSWERED, Wait.UNANSWERED_BACKOFF)
_FAILED = Step(State.FAILED, Charge.ATTEMPT)
_BOUNCED = Step(State.BOUNCED, Charge.ATTEMPT, bounce=True)

#: From a message on the wire (``sending``): one row per event the relay can cause.
ON_THE_WIRE: dict[Event, Step] = {
    Event.ACCEPTED: Step(State.SENT, Charge.ATTEMPT),
    Event.TEMPORARY_AT_MAIL: Step(
        State.DEFERRED, Charge.NOTHING, Wait.RELAY_BACKOFF, pause_relay=True
    ),
    Event.PERMANENT_AT_MAIL: _FAILED,
    Event.TEMPORARY_AT_RCPT: _RETRY,
    Event.PERMANENT_AT_RCPT: _BOUNCED,
    Event.TEMPORARY_AT_DATA: _RETRY,
    Event.PERMANENT_AT_DATA: _FAILED,
    Event.TEMPORARY_AFTER_BODY: _RETRY,
    Event.PERMANENT_AFTER_BODY: _FAILED,
    # Refused for relaying, yet the relay took other recipients: this relay will not
    # carry this message, but the address may be fine.
    Event.REFUSED_FOR_RELAYING: Step(State.FAILED),
    Event.SAME_REPLY_IN_A_ROW: Step(
        State.DEFERRED, Charge.NOTHING, Wait.RELAY_BACKOFF, pause_relay=True
    ),
    Event.CONNECTION_LIMIT: Step(State.SENDING, Charge.NOTHING, Wait.AT_ONCE),
    Event.RELAY_UNAVAILABLE: _RELAY,
    Event.LOST_BEFORE_BODY: _RETRY,
    Event.LOST_BEFORE_BODY_RELAY: _RELAY,
    Event.LOST_AFTER_BODY: _UNANSWERED,
    Event.REPLY_TIMEOUT: _UNANSWERED,
    Event.UNDECIDED: _RETRY,
    Event.BUILD_FAILED: _RETRY,
    Event.BUILD_REFUSED: Step(State.FAILED),
    Event.GIVEN_BACK: Step(State.PENDING),
    Event.LEASE_EXPIRED: Step(State.PENDING),
}

#: The whole table: (state, event) -> step. A pair not in it leaves the message as it is.
TABLE: dict[tuple[State, Event], Step] = {
    (State.PENDING, Event.CLAIMED): Step(State.SENDING),
    (State.DEFERRED, Event.CLAIMED): Step(State.SENDING),
    (State.PENDING, Event.SUBSCRIBER_LEFT): Step(State.SUPPRESSED),
    (State.DEFERRED, Event.SUBSCRIBER_LEFT): Step(State.SUPPRESSED),
    **{(State.SENDING, event): step for event, step in ON_THE_WIRE.items()},
    # What the relay accepted may bounce later, by a DSN to the return path; the copy
    # whose fate is unknown too (the DSN shows it was taken).
    (State.SENT, Event.LATER_BOUNCE): Step(State.BOUNCED, bounce=True),
    (State.UNKNOWN, Event.LATER_BOUNCE): Step(State.BOUNCED, bounce=True),
    # A complaint is about mail that arrived: the message stays as it was, the
    # subscriber is suppressed at once.
    **{
        (state, Event.COMPLAINT): Step(state, suppress=True)
        for state in (State.SENT, State.UNKNOWN, State.BOUNCED)
    },
}


@dataclass(frozen=True)
class Limits:
    max_attempts: int
    #: Tries again after a body went out without a final reply (then ``unknown``).
    max_unanswered: int = 2


def decide(state: State, event: Event, *, attempts: int, unanswered: int, limits: Limits) -> Step:
    """The step ``event`` takes a message in ``state`` with ``attempts`` counted and
    ``unanswered`` bodies sent without a final reply. Applies the allowances: a
    deferral that spends the last attempt fails; an unanswered body beyond
    ``max_unanswered`` retries is ``unknown``."""
    step = TABLE.get((state, event))
    if step is None:
        return Step(state)
    if (
        step.to is State.DEFERRED
        and step.charge is Charge.ATTEMPT
        and attempts + 1 >= limits.max_attempts
    ):
        return Step(State.FAILED, Charge.ATTEMPT)
    if (
        step.to is State.DEFERRED
        and step.charge is Charge.UNANSWERED
        and unanswered + 1 > limits.max_unanswered
    ):
        return Step(State.UNKNOWN, Charge.UNANSWERED)
    return step


def markdown_table() -> str:
    """The table as Markdown (the README's copy; a test keeps the two the same)."""
    lines = ["| state | event | becomes | spends | due again | also |", "|---|---|---|---|---|---|"]
    for (state, event), step in TABLE.items():
        also = ", ".join(
            word
            for word, on in (
                ("pauses the relay", step.pause_relay),
                ("a bounce", step.bounce),
                ("suppresses", step.suppress),
            )
            if on
        )
        due = step.wait.value if step.to in (State.DEFERRED, State.PENDING, State.SENDING) else ""
        lines.append(f"| {state} | {event} | {step.to} | {step.charge} | {due} | {also} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
