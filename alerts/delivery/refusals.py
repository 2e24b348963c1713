"""Telling a relay that refuses to relay from recipients that do not exist.

A 5xx at RCPT TO is normally the recipient's (a hard bounce), but a relay that is
misconfigured, or that this account may not relay through, refuses every recipient
alike: "554 5.7.1 <ann@example.net>: Relay access denied", "550 5.7.1 ... not permitted
to relay", "530 5.7.0 Authentication required". Bouncing on that would suppress every
subscriber. These functions read a refusal (:func:`about_relaying`) and a streak of them
in a row (:func:`condemns_the_relay`); the dispatcher holds each refusal until a later
message shows whether the relay takes recipients at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Refusals in a row at RCPT TO, for different recipients, after which the relay (or the
#: account) is taken to refuse them all: the same number as for MAIL FROM.
RCPT_REFUSED_LIMIT = 3
#: RFC 4954: authentication required.
AUTH_REQUIRED = 530

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"<[^<>]*>|\S+@\S+")
_RELAY_WORDS = re.compile(r"\brelay|\bauth|\blog ?in\b|\bcredential|\bsubmission\b", re.IGNORECASE)


@dataclass(frozen=True)
class RcptRefusal:
    """A 5xx reply at RCPT TO for one recipient."""

    recipient: str
    code: int
    #: The reply's text after the code ("5.7.1 <ann@example.net>: Relay access denied").
    detail: str

    @property
    def domain(self) -> str:
        return self.recipient.rpartition("@")[2].lower()

    @property
    def about_relaying(self) -> bool:
        return about_relaying(self.code, self.detail)

    @property
    def shape(self) -> str:
        """The reply with the addresses taken out, to compare refusals of different
        recipients ("550 5.7.1 : relay access denied")."""
        return f"{self.code} " + " ".join(_ADDRESS.sub("", self.detail).lower().split())

    @property
    def about_the_mailbox(self) -> bool:
        """Enhanced status 5.1.x (addressing) or 5.2.x (mailbox): this recipient's."""
        enhanced = enhanced_code(self.detail)
        return enhanced is not None and enhanced.startswith(("5.1.", "5.2."))


def enhanced_code(detail: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply's text, if any."""
    match = _ENHANCED.match(detail.strip())
    return ".".join(match.groups()) if match else None


def about_relaying(code: int, detail: str) -> bool:
    """A refusal that speaks of relaying or authentication (RFC 3463 5.7.x, security or
    policy; or 530, authentication required): the relay's rule for this account, which
    says nothing about whether the address exists."""
    if code == AUTH_REQUIRED:
        return True
    enhanced = enhanced_code(detail)
    if enhanced is not None and not enhanced.startswith("5.7."):
        return False
    return bool(_RELAY_WORDS.search(_ADDRESS.sub("", detail)))


def condemns_the_relay(refusals: Sequence[RcptRefusal]) -> bool:
    """Do these refusals in a row (no message let past RCPT TO between them) say the
    relay refuses recipients as such? Yes when :data:`RCPT_REFUSED_LIMIT` different
    recipients were refused for relaying or authentication, or when the last that many
    were refused with the same words (addresses aside) across more than one domain and
    not with a mailbox's own status (5.1.x, 5.2.x: "no such user" stays a bounce)."""
    policy = {r.recipient for r in refusals if r.about_relaying}
    if len(policy) >= RCPT_REFUSED_LIMIT:
        return True
    last = refusals[-RCPT_REFUSED_LIMIT:]
    return len(last) == RCPT_REFUSED_LIMIT and same_words_across_domains(last)


def same_words_across_domains(refusals: Sequence[RcptRefusal]) -> bool:
    """Two or more refusals with the same words (addresses aside) for more than one
    domain, none with a mailbox's own status: a relay's blanket answer, not the
    recipients' servers each saying the same."""
    return (
        len(refusals) > 1
        and len({r.shape for r in refusals}) == 1
        and len({r.domain for r in refusals}) > 1
        and not any(r.about_the_mailbox for r in refusals)
    )
