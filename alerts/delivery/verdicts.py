"""Which lifecycle event a relay's reply was, for replies whose meaning shows only by
what the relay says to the messages after them.

One :class:`Verdicts` per worker (per connection to the relay) is told, message after
message, what the relay answered; it gives back the :class:`~alerts.delivery.policy.Event`
of each message as soon as it is known. Pure: no I/O, no clock. The waits:

- a 5xx at MAIL FROM may be this message's (a policy check) or the relay refusing the
  sender: the next message that gets past MAIL FROM shows it was the message's;
  :data:`SENDER_REFUSED_LIMIT` in a row and the relay refuses the sender;
- a session lost before the body may be the relay's trouble or the message's (one the
  relay chokes on): if the relay carries a later message, it was the message's;
- a 5xx at RCPT TO is the recipient's bounce unless recipient after recipient is refused
  alike (:mod:`alerts.delivery.refusals`): then the relay will not relay for this account;
- a 4xx at DATA or after the body may be the message's or the relay's: the same reply
  (addresses aside) to the next message, for another recipient, makes it the relay's.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from alerts.delivery.base import Stage
from alerts.delivery.policy import Event
from alerts.delivery.refusals import RcptRefusal, condemns_the_relay, same_words_across_domains

M = TypeVar("M", bound=Hashable)

#: Messages in a row refused at MAIL FROM (and none let past it) after which the relay is
#: taken to refuse the sender itself.
SENDER_REFUSED_LIMIT = 3
#: Stages a message reaches only once the relay accepted MAIL FROM.
PAST_MAIL_FROM = frozenset({Stage.RCPT, Stage.DATA, Stage.BODY})
#: Stages a message reaches only once the relay accepted its recipient.
PAST_RCPT = frozenset({Stage.DATA, Stage.BODY})

_ADDRESS = re.compile(r"<[^<>]*>|\S+@\S+")


@dataclass(frozen=True)
class Decided(Generic[M]):
    message: M
    event: Event
    why: str


class Condemned(Exception):
    """The relay refuses the sender, or every recipient: no message can go as configured."""

    def __init__(self, kind: str, held: list[object], why: str):
        super().__init__(why)
        self.kind = kind  # "sender" or "recipients"
        self.held = held


def shape(code: int, detail: str) -> str:
    """A reply with the addresses taken out, to compare replies to different recipients."""
    return f"{code} " + " ".join(_ADDRESS.sub("", detail).lower().split())


@dataclass
class Verdicts(Generic[M]):
    """The events of one worker's messages, in the order the relay answered them."""

    refused_senders: list[tuple[M, str]] = field(default_factory=list)
    lost: list[tuple[M, str]] = field(default_factory=list)
    refused_rcpts: list[tuple[M, RcptRefusal, str]] = field(default_factory=list)
    #: 4xx at DATA or after the body, waiting for the next message: (message, recipient,
    #: stage, shape, text).
    temporary: list[tuple[M, str, Stage, str, str]] = field(default_factory=list)

    # -- what the relay said ------------------------------------------------------------

    def accepted(self, message: M) -> list[Decided[M]]:
        return [
            *self._past(Stage.BODY),
            *self._settle_temporary(),
            Decided(message, Event.ACCEPTED, ""),
        ]

    def reply(
        self, message: M, recipient: str, stage: Stage, code: int, detail: str, why: str
    ) -> list[Decided[M]]:
        """A 4xx or 5xx reply (a 552 at RCPT TO counts as 4xx). May raise
        :class:`Condemned`."""
        temporary = code < 500 or (stage is Stage.RCPT and code == 552)
        if stage is Stage.MAIL and temporary:
            # No recipient is named yet: the relay's quota or throttle.
            return [*self._settle_temporary(), Decided(message, Event.TEMPORARY_AT_MAIL, why)]
        if stage is Stage.MAIL:
            self.refused_senders.append((message, why))
            if len(self.refused_senders) >= SENDER_REFUSED_LIMIT:
                held = [m for m, _ in self.refused_senders]
                self.refused_senders = []
                raise Condemned("sender", list(held), why)
            return self._settle_temporary()
        decided = self._past(stage)
        if stage is Stage.RCPT and temporary:
            return [
                *decided,
                *self._settle_temporary(),
                Decided(message, Event.TEMPORARY_AT_RCPT, why),
            ]
        if stage is Stage.RCPT:
            decided += self._settle_temporary()
            self.refused_rcpts.append((message, RcptRefusal(recipient, code, detail), why))
            refusals = [r for _, r, _ in self.refused_rcpts]
            if condemns_the_relay(refusals):
                held = [m for m, _, _ in self.refused_rcpts]
                self.refused_rcpts = []
                raise Condemned("recipients", [*held], f"{code} {detail}")
            return decided
        if temporary:
            return decided + self._temporary(message, recipient, stage, shape(code, detail), why)
        decided += self._settle_temporary()
        event = Event.PERMANENT_AT_DATA if stage is Stage.DATA else Event.PERMANENT_AFTER_BODY
        return [*decided, Decided(message, event, why)]

    def too_big(self, message: M, why: str) -> list[Decided[M]]:
        """Refused at MAIL FROM for its declared size: this message's alone."""
        return [*self._settle_temporary(), Decided(message, Event.PERMANENT_AT_MAIL, why)]

    def lost_session(self, message: M, stage: Stage, why: str) -> list[Decided[M]]:
        """The relay closed the session (421) or dropped it before the body was done."""
        decided = self._settle_temporary()
        self.lost.append((message, why))
        return decided

    def unanswered(self, message: M, why: str, *, timed_out: bool) -> list[Decided[M]]:
        """The body went out and no final reply came (dropped, or too slow)."""
        event = Event.REPLY_TIMEOUT if timed_out else Event.LOST_AFTER_BODY
        return [*self._settle_temporary(), Decided(message, event, why)]

    def unavailable(self, message: M, why: str) -> list[Decided[M]]:
        """No session could be opened for this message."""
        return [*self._settle_temporary(), Decided(message, Event.RELAY_UNAVAILABLE, why)]

    def finish(self, *, stopped: bool) -> list[Decided[M]]:
        """The verdicts that waited for a later message that never came (the end of the
        run, a stop, the relay given up on)."""
        decided = self._settle_temporary()
        why = "deferred: no other message has shown yet whether the relay refuses this message or the sender"
        decided += [
            Decided(m, Event.UNDECIDED, f"{text} ({why})") for m, text in self.refused_senders
        ]
        decided += [Decided(m, Event.LOST_BEFORE_BODY_RELAY, text) for m, text in self.lost]
        # Refused at RCPT TO with nothing after to tell: a refusal for relaying, or the
        # same words for several domains, may be the relay's, so it is undecided (never a
        # bounce); and when the run stops nothing was learnt: given back, no attempt.
        blanket = same_words_across_domains([r for _, r, _ in self.refused_rcpts])
        for m, refusal, text in self.refused_rcpts:
            if refusal.about_relaying or blanket:
                note = "deferred, not bounced: no message since has shown whether the relay refuses every recipient"
                event = Event.GIVEN_BACK if stopped else Event.UNDECIDED
                decided.append(Decided(m, event, f"{text} ({note})"))
            else:
                decided.append(Decided(m, Event.PERMANENT_AT_RCPT, text))
        self.refused_senders, self.lost, self.refused_rcpts = [], [], []
        return decided

    # -- inside ----------------------------------------------------------------------

    def _past(self, stage: Stage) -> list[Decided[M]]:
        """A message got to ``stage``: what that shows of the ones held before it."""
        if stage not in PAST_MAIL_FROM:
            return []
        decided = [Decided(m, Event.PERMANENT_AT_MAIL, text) for m, text in self.refused_senders]
        decided += [Decided(m, Event.LOST_BEFORE_BODY, text) for m, text in self.lost]
        self.refused_senders, self.lost = [], []
        if stage in PAST_RCPT and self.refused_rcpts:
            for m, refusal, text in self.refused_rcpts:
                if refusal.about_relaying:
                    decided.append(
                        Decided(
                            m,
                            Event.REFUSED_FOR_RELAYING,
                            f"{text} (refused for relaying, not for the address)",
                        )
                    )
                else:
                    decided.append(Decided(m, Event.PERMANENT_AT_RCPT, text))
            self.refused_rcpts = []
        return decided

    def _temporary(
        self, message: M, recipient: str, stage: Stage, words: str, why: str
    ) -> list[Decided[M]]:
        held = self.temporary
        if held and all(h[3] == words for h in held) and recipient not in {h[1] for h in held}:
            self.temporary = []
            why_relay = (
                f"{why} (the same reply for {len(held) + 1} recipients in a row: the relay's)"
            )
            return [Decided(m, Event.SAME_REPLY_IN_A_ROW, why_relay) for m, *_ in held] + [
                Decided(message, Event.SAME_REPLY_IN_A_ROW, why_relay)
            ]
        decided = self._settle_temporary()
        self.temporary = [(message, recipient, stage, words, why)]
        return decided

    def _settle_temporary(self) -> list[Decided[M]]:
        """A 4xx held for comparison, the next message answered otherwise: its own."""
        decided = [
            Decided(
                m,
                Event.TEMPORARY_AT_DATA if stage is Stage.DATA else Event.TEMPORARY_AFTER_BODY,
                why,
            )
            for m, _, stage, _, why in self.temporary
        ]
        self.temporary = []
        return decided
