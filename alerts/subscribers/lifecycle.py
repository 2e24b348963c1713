"""The subscriber lifecycle: one table of what each event does to an address in each
state, and which mail it sends. The store, the web pages and the CLI do what this table
says; the README prints it (:func:`markdown_table`); tests/subscribers/test_lifecycle.py
drives random sequences of these events against the real store with the clock moving
and checks the outcome against :func:`step`.

States are what we hold about an address:

- ``absent``: nothing;
- ``pending``: signed up, not yet confirmed by email;
- ``active``: confirmed (or added by the operator), mailed as they chose;
- ``unsubscribed``: left; the row is kept so no import or command adds it back;
- ``suppressed``: hard bounces or a complaint; never mailed again, whether the row or
  only its keyed hash is kept;
- ``erased``: only a keyed hash of the address is kept (after an erasure, or a purge of
  an old opt-out), so nobody can read it back and no import adds it again.

The rules the table keeps (and the state-machine test checks):

1. whoever asks on the form and confirms is active, with the choices they confirmed,
   whatever happened before (a suppressed address excepted: it is never mailed);
2. nothing is mailed to an unsubscribed, suppressed or erased address except a
   confirmation its owner (or the operator for them) just asked for, or the one undo
   link a coordinator gets when a one-click (perhaps from a forwarded copy) ended their
   forwardable subscription; never anything to a suppressed one;
3. only a confirmation link made after the last time an address left can bring it back,
   and no link made for one person acts on another (ids are never reused; links carry a
   key of the row they were made for);
4. no import, command or bounce makes an opted-out address active: only its owner (by
   confirming, or by the undo link mailed to them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class State(enum.StrEnum):
    ABSENT = "absent"
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"
    ERASED = "erased"


class Event(enum.StrEnum):
    SIGN_UP = "sign-up"  # the form, by anyone, for any address
    CONFIRM = "confirm"  # the newest confirmation link the address was sent, pressed
    MANAGE = "manage"  # "email me a link to manage my subscription"
    ONE_CLICK = "one-click"  # RFC 8058 one-click, or the unsubscribe page's button
    #: The same, on a subscription to the forwardable edition: a member's mail app holding
    #: a forwarded copy may have pressed it, so its coordinator is mailed a link to undo it.
    ONE_CLICK_FORWARDABLE = "one-click, forwardable edition"
    UNDO = "undo"  # the coordinator presses that link's button
    CLI_ADD = "add"  # alerts subscribers add
    CLI_REMOVE = "remove"  # alerts subscribers remove
    IMPORT = "import"  # alerts subscribers import (without --consented)
    IMPORT_CONSENTED = "import --consented"  # the operator states how they agreed
    BOUNCE = "bounce"  # the hard bounce that reaches delivery.max_bounces
    COMPLAINT = "complaint"  # a spam report (ARF) or a 5xx naming policy
    ERASE = "erase"  # alerts privacy erase
    PURGE = "purge"  # alerts privacy purge, once retention: has run out for the record


class Mail(enum.StrEnum):
    NONE = "none"
    CONFIRM = "confirmation"  # "confirm your subscription", with the choices it confirms
    ALREADY = "already subscribed"  # to an active address that signs up again
    MANAGE_LINK = "manage link"
    WELCOME = "welcome"  # after confirming: the choices, when mail comes, how to leave
    ADDED = "added notice"  # an import --consented added them: why, and links to change or leave
    UNDO = "undo link"  # to a coordinator one-clicked out: their subscription, back in one press


@dataclass(frozen=True)
class Cell:
    """What one event does to an address in one state: the state it is in after, and
    the one message it sends (before any limit: the form's mail is also limited per
    mailbox and per client, and a message over a limit is not sent)."""

    after: State
    mail: Mail = Mail.NONE
    #: Why, in a few words, for the README; empty where the cell speaks for itself.
    note: str = ""


S, E, M = State, Event, Mail

TABLE: dict[State, dict[Event, Cell]] = {
    S.ABSENT: {
        E.SIGN_UP: Cell(S.PENDING, M.CONFIRM),
        E.CONFIRM: Cell(S.ABSENT, note="no link exists"),
        E.MANAGE: Cell(S.ABSENT),
        E.ONE_CLICK: Cell(S.ABSENT, note="no link exists"),
        E.CLI_ADD: Cell(
            S.ACTIVE, note="the operator vouches; --pending: pending, with a confirmation"
        ),
        E.CLI_REMOVE: Cell(S.ABSENT, note="error: no such subscriber"),
        E.IMPORT: Cell(S.PENDING, M.CONFIRM, "within the mailbox limits, or once they allow"),
        E.BOUNCE: Cell(S.ABSENT, note="nothing was sent"),
        E.COMPLAINT: Cell(S.ABSENT, note="nothing was sent"),
        E.ERASE: Cell(S.ERASED, note="the hash is kept all the same"),
        E.PURGE: Cell(S.ABSENT),
        E.ONE_CLICK_FORWARDABLE: Cell(S.ABSENT, note="no link exists"),
        E.UNDO: Cell(S.ABSENT, note="no link exists"),
        E.IMPORT_CONSENTED: Cell(
            S.ACTIVE,
            M.ADDED,
            "the operator states how they agreed; within the mailbox limits, or once they allow",
        ),
    },
    S.PENDING: {
        E.SIGN_UP: Cell(S.PENDING, M.CONFIRM, "takes the new choices; a fresh confirmation"),
        E.CONFIRM: Cell(S.ACTIVE, M.WELCOME, "with the choices the confirmation stated"),
        E.MANAGE: Cell(S.PENDING, M.CONFIRM),
        E.ONE_CLICK: Cell(S.UNSUBSCRIBED),
        E.CLI_ADD: Cell(S.PENDING, note="takes the new choices; still theirs to confirm"),
        E.CLI_REMOVE: Cell(S.UNSUBSCRIBED),
        E.IMPORT: Cell(S.PENDING, note="--update takes the file's choices"),
        E.BOUNCE: Cell(S.SUPPRESSED),
        E.COMPLAINT: Cell(S.SUPPRESSED),
        E.ERASE: Cell(S.ERASED),
        E.PURGE: Cell(S.ABSENT, note="never confirmed within retention.pending_days"),
        E.ONE_CLICK_FORWARDABLE: Cell(S.UNSUBSCRIBED, note="nothing confirmed, nothing to undo"),
        E.UNDO: Cell(S.PENDING, note="no link of this record"),
        E.IMPORT_CONSENTED: Cell(S.PENDING, note="--update takes the file's choices"),
    },
    S.ACTIVE: {
        E.SIGN_UP: Cell(S.ACTIVE, M.ALREADY, "nothing changes: the notice has a manage link"),
        E.CONFIRM: Cell(S.ACTIVE, note="already confirmed"),
        E.MANAGE: Cell(S.ACTIVE, M.MANAGE_LINK),
        E.ONE_CLICK: Cell(S.UNSUBSCRIBED),
        E.CLI_ADD: Cell(S.ACTIVE, note="takes the new choices"),
        E.CLI_REMOVE: Cell(S.UNSUBSCRIBED),
        E.IMPORT: Cell(S.ACTIVE, note="--update takes the file's choices"),
        E.BOUNCE: Cell(S.SUPPRESSED),
        E.COMPLAINT: Cell(S.SUPPRESSED),
        E.ERASE: Cell(S.ERASED),
        E.PURGE: Cell(S.ACTIVE, note="kept while they subscribe"),
        E.ONE_CLICK_FORWARDABLE: Cell(
            S.UNSUBSCRIBED, M.UNDO, "perhaps from a forwarded copy: the coordinator can undo it"
        ),
        E.UNDO: Cell(S.ACTIVE, note="nothing to undo: back already, or subscribed again since"),
        E.IMPORT_CONSENTED: Cell(S.ACTIVE, note="--update takes the file's choices"),
    },
    S.UNSUBSCRIBED: {
        E.SIGN_UP: Cell(S.UNSUBSCRIBED, M.CONFIRM, "the owner asked: sent although they left"),
        E.CONFIRM: Cell(
            S.ACTIVE, M.WELCOME, "a link made after they left, with the choices it stated"
        ),
        E.MANAGE: Cell(S.UNSUBSCRIBED),
        E.ONE_CLICK: Cell(S.UNSUBSCRIBED),
        E.CLI_ADD: Cell(S.UNSUBSCRIBED, M.CONFIRM, "only the owner brings it back, by confirming"),
        E.CLI_REMOVE: Cell(S.UNSUBSCRIBED),
        E.IMPORT: Cell(S.UNSUBSCRIBED, note="skipped as opted out"),
        E.BOUNCE: Cell(S.SUPPRESSED),
        E.COMPLAINT: Cell(S.SUPPRESSED),
        E.ERASE: Cell(S.ERASED),
        E.PURGE: Cell(S.ERASED, note="after retention.unsubscribed_days"),
        E.ONE_CLICK_FORWARDABLE: Cell(S.UNSUBSCRIBED),
        E.UNDO: Cell(
            S.ACTIVE, note="as it was before that one-click, if nothing changed since; once"
        ),
        E.IMPORT_CONSENTED: Cell(S.UNSUBSCRIBED, note="skipped as opted out"),
    },
    S.SUPPRESSED: {
        E.SIGN_UP: Cell(S.SUPPRESSED, note="never mailed"),
        E.CONFIRM: Cell(S.SUPPRESSED),
        E.MANAGE: Cell(S.SUPPRESSED),
        E.ONE_CLICK: Cell(S.SUPPRESSED),
        E.CLI_ADD: Cell(S.SUPPRESSED, note="refused"),
        E.CLI_REMOVE: Cell(S.SUPPRESSED),
        E.IMPORT: Cell(S.SUPPRESSED, note="skipped as opted out"),
        E.BOUNCE: Cell(S.SUPPRESSED),
        E.COMPLAINT: Cell(S.SUPPRESSED),
        E.ERASE: Cell(S.SUPPRESSED, note="only the keyed hash is kept, still suppressed"),
        E.PURGE: Cell(
            S.SUPPRESSED, note="only the keyed hash is kept after retention.unsubscribed_days"
        ),
        E.ONE_CLICK_FORWARDABLE: Cell(S.SUPPRESSED),
        E.UNDO: Cell(S.SUPPRESSED, note="never mailed again"),
        E.IMPORT_CONSENTED: Cell(S.SUPPRESSED, note="skipped as opted out"),
    },
    S.ERASED: {
        E.SIGN_UP: Cell(S.PENDING, M.CONFIRM, "a new record; the hash stays"),
        E.CONFIRM: Cell(S.ERASED, note="the erased record's links act on nobody"),
        E.MANAGE: Cell(S.ERASED),
        E.ONE_CLICK: Cell(S.ERASED, note="the erased record's links act on nobody"),
        E.CLI_ADD: Cell(S.PENDING, M.CONFIRM, "only the owner brings it back, by confirming"),
        E.CLI_REMOVE: Cell(S.ERASED, note="error: no such subscriber"),
        E.IMPORT: Cell(S.ERASED, note="skipped as opted out"),
        E.BOUNCE: Cell(S.ERASED, note="nothing was sent"),
        E.COMPLAINT: Cell(S.ERASED, note="nothing was sent"),
        E.ERASE: Cell(S.ERASED),
        E.PURGE: Cell(S.ERASED),
        E.ONE_CLICK_FORWARDABLE: Cell(S.ERASED, note="the erased record's links act on nobody"),
        E.UNDO: Cell(S.ERASED, note="the erased record's links act on nobody"),
        E.IMPORT_CONSENTED: Cell(S.ERASED, note="skipped as opted out"),
    },
}

#: States in which an address may get mail that it did not just ask for.
MAILABLE = frozenset({S.PENDING, S.ACTIVE})


def step(state: State, event: Event, *, hash_kept: bool = False) -> Cell:
    """What ``event`` does to an address in ``state``. ``hash_kept``: a keyed hash of the
    address is held (it was erased, or purged as an opt-out, before): a record that goes
    then leaves ``erased`` behind rather than ``absent``, and the hash bars imports."""
    cell = TABLE[state][event]
    if hash_kept and cell.after is S.ABSENT:
        return Cell(S.ERASED, cell.mail, cell.note)
    if hash_kept and state is S.ABSENT:
        return TABLE[S.ERASED][event]
    return cell


def markdown_table() -> str:
    """The table as Markdown, one row per event, for the README (a test keeps the two
    the same)."""
    states = list(State)
    lines = [
        "| event | " + " | ".join(states) + " |",
        "|---|" + "---|" * len(states),
    ]
    for event in Event:
        cells = []
        for state in states:
            cell = TABLE[state][event]
            text = cell.after.value if cell.after is not state else "="
            if cell.mail is not M.NONE:
                text += f", mails {cell.mail.value}"
            if cell.note:
                text += f" ({cell.note})"
            cells.append(text)
        lines.append(f"| {event.value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def may_mail(
    status: str, *, transactional: bool, queued_at: datetime | None, left_at: datetime | None
) -> bool:
    """Whether a message queued at ``queued_at`` may go to a subscriber whose status is
    ``status`` now (checked when it is sent, so whoever left meanwhile gets nothing):
    pending and active ones, yes; an unsubscribed one only transactional mail queued
    after they left (``left_at``): the confirmation they (or the operator for them) just
    asked for, or the undo link mailed to a coordinator whose forwardable subscription a
    one-click ended; a suppressed one never."""
    if status in (State.PENDING, State.ACTIVE):
        return True
    if status == State.UNSUBSCRIBED and transactional:
        return queued_at is not None and left_at is not None and queued_at > left_at
    return False
