"""Reading the mail that comes back: delivery status notifications (RFC 3464) and
feedback-loop complaints (ARF, RFC 5965), with the standard library's email parser.

:func:`read_report` turns one message into what it says, as data: hard bounces (only
``Action: failed`` with a 5.x.x status: never a delay, a relayed or delivered notice, or
an auto-reply), a complaint (with the Message-ID of the mail complained about, since
feedback loops often redact the recipient), or nothing to act on, with the reason.
Whether a bounce is acted on is for the caller, which verifies the return path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

#: Headers that may carry the address a report was delivered to (our return path).
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"<?([^<>\s;]+@[^<>\s;]+)>?")


@dataclass(frozen=True)
class Bounce:
    """One recipient the remote side gave up on for good."""

    recipient: str
    status: str
    diagnostic: str
    #: Where the notification was delivered (candidates for our return path).
    return_paths: tuple[str, ...]
    #: The Message-ID of the bounced message, when the report returned its headers.
    message_id: str | None


@dataclass(frozen=True)
class Complaint:
    """A recipient marked a message as spam (a feedback-loop report)."""

    feedback_type: str
    message_id: str | None
    return_paths: tuple[str, ...]
    recipient: str | None


@dataclass(frozen=True)
class Ignored:
    """Nothing to act on, and why (a delay, an auto-reply, a report of another kind)."""

    reason: str


Report = tuple[Bounce, ...] | Complaint | Ignored


def read_report(data: bytes) -> Report:
    """What one returned message says."""
    # compat32: the report parts (message/delivery-status, message/feedback-report) come
    # back as header blocks that it parses as such.
    message = message_from_bytes(data, policy=compat32)
    if message.get_content_type() != "multipart/report":
        return Ignored("not a report (an auto-reply or other mail): nothing to act on")
    param = message.get_param("report-type")
    kind = param.lower() if isinstance(param, str) else ""
    where = _return_paths(message)
    if kind == "delivery-status":
        return _dsn(message, where)
    if kind == "feedback-report":
        return _arf(message, where)
    return Ignored(f"a report of type {kind or 'unknown'!r}")


def _dsn(message: Message, where: tuple[str, ...]) -> Report:
    status_part = _part(message, ("message/delivery-status", "message/global-delivery-status"))
    if status_part is None:
        return Ignored("a delivery report without its delivery-status part")
    blocks = _blocks(status_part)
    message_id = _returned_message_id(message)
    bounces: list[Bounce] = []
    seen: list[str] = []
    for fields in blocks[1:]:  # the first block is about the reporting MTA
        action = fields.get("action", "").strip().lower()
        status = fields.get("status", "").strip()
        seen.append(f"{action or '?'} {status or '?'}")
        match = _STATUS.match(status)
        if action != "failed" or match is None or match.group(1) != "5":
            continue
        recipient = _address(
            fields.get("final-recipient", "") or fields.get("original-recipient", "")
        )
        if recipient is None:
            continue
        bounces.append(
            Bounce(
                recipient=recipient,
                status=".".join(match.groups()),
                diagnostic=" ".join(fields.get("diagnostic-code", "").split())[:500],
                return_paths=where,
                message_id=message_id,
            )
        )
    if not bounces:
        return Ignored(f"no permanent failure in the report ({', '.join(seen) or 'no recipients'})")
    return tuple(bounces)


def _arf(message: Message, where: tuple[str, ...]) -> Report:
    part = _part(message, ("message/feedback-report",))
    if part is None:
        return Ignored("a feedback report without its feedback-report part")
    blocks = _blocks(part)
    fields = blocks[0] if blocks else {}
    feedback = fields.get("feedback-type", "").strip().lower()
    if feedback not in ("abuse", "fraud", "virus", "other", ""):
        return Ignored(f"feedback of type {feedback!r} (not a complaint)")
    recipient = _address(fields.get("original-rcpt-to", "") or fields.get("removal-recipient", ""))
    return Complaint(feedback or "abuse", _returned_message_id(message), where, recipient)


def _part(message: Message, types: tuple[str, ...]) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in types:
            return part
    return None


def _blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a message/delivery-status or feedback-report part, each as
    lower-case field name -> value."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [
            {k.lower(): str(v) for k, v in block.items()}
            for block in payload
            if isinstance(block, Message)
        ]
    # Some senders give it as text: blocks separated by blank lines.
    text = payload if isinstance(payload, str) else ""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\r?\n\s*\r?\n", text):
        fields: dict[str, str] = {}
        name = ""
        for line in chunk.splitlines():
            if line[:1].isspace() and name:
                fields[name] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                fields[name] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _returned_message_id(message: Message) -> str | None:
    """The Message-ID of the returned original (its headers or the whole of it)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                value = inner[0].get("Message-ID")
                if value:
                    return _bare(str(value))
        if kind in ("text/rfc822-headers", "text/rfc822-header"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                value = message_from_bytes(raw, policy=compat32).get("Message-ID")
                if value:
                    return _bare(str(value))
    return None


def _return_paths(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in _DELIVERED_TO:
        for value in message.get_all(name) or []:
            for match in _ADDRESS.finditer(str(value)):
                if match.group(1).lower() not in found:
                    found.append(match.group(1).lower())
    return tuple(found)


def _address(value: str) -> str | None:
    """The address of a ``rfc822; ann@example.org`` field."""
    _, _, address = value.rpartition(";")
    match = _ADDRESS.search(address.strip())
    return match.group(1) if match else None


def _bare(message_id: str) -> str:
    return " ".join(message_id.split()).strip().strip("<>")
