"""Building the email for one outbox row: the rendered variant plus one subscriber.

The expensive part (templates, CSS inlining, MIME structure, choosing the transfer
encodings, folding the shared headers) is done once per digest by
:class:`PreparedDigest`; per message there is only string work: the personal links go
into the finished part bodies and the personal headers (To, Date, Message-ID,
List-Unsubscribe) are put in front. That keeps a message well under a millisecond.

The transfer encoding of each part is the one the stdlib email package picks for its
content (with the personal links at their longest). The HTML part is ASCII with short
lines, so it is normally 7bit and the links are substituted straight into the bytes;
a part that needs quoted-printable or base64 is encoded per message after
substitution, since an encoder could split a placeholder.

Why a second way to build an email exists (``alerts.subscribers.mail``): a confirmation
goes to one person, once, and is complete when it is queued (its signed link, Date and
Message-ID are fixed then, so a retry resends the very same bytes). The stdlib
``EmailMessage`` builds it, correct by construction, and it is queued whole; here it is
only read back (:class:`_Finished`). This module's byte-level composing exists for the
other case only: one rendered digest going to thousands, where per-message cost
matters. Both reach the relay through :class:`MessageFactory`.
"""

from __future__ import annotations

import binascii
import collections
import email.policy
import functools
import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from alerts.config import MailSettings
from alerts.errors import AlertsError, NotFound
from alerts.store.digests import StoredDigest
from alerts.store.store import Store
from alerts.text import one_line
from alerts.tokens import LinkSigner, PersonalLinks
from alerts.types import OutboxItem, RenderedDigest

CRLF = b"\r\n"
#: How the email package decides a part's transfer encoding: 7bit-clean output (no
#: 8BITMIME needed from the relay), lines up to the RFC 5322 limit of 998.
_BODY_POLICY = email.policy.SMTP.clone(cte_type="7bit", max_line_length=998)
_HEADER_POLICY = email.policy.SMTP
#: Longest personal link assumed when the encoding is chosen.
_LONGEST_LINK = 300
_SIMPLE_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")


class MessageError(AlertsError):
    """A message cannot be built (a bad address or Message-ID in the outbox row)."""


def new_message_id(domain: str) -> str:
    """A unique Message-ID on the configured domain (random: says nothing about anyone)."""
    return f"<{secrets.token_hex(16)}@{domain}>"


class _Part:
    """One MIME part with placeholders: literal pieces and placeholder names alternate."""

    def __init__(self, content: str, subtype: str, placeholders: dict[str, str]):
        raw = content.replace("\r\n", "\n").replace("\r", "\n")
        if not raw.endswith("\n"):
            raw += "\n"
        by_marker = {marker: name for name, marker in placeholders.items()}
        # The email package picks the encoding for the content at its longest.
        longest = raw
        for marker in by_marker:
            longest = longest.replace(marker, "x" * _LONGEST_LINK)
        probe = EmailMessage(policy=_BODY_POLICY)
        probe.set_content(longest, subtype=subtype, charset="utf-8")
        self.cte = str(probe["Content-Transfer-Encoding"])
        self.head = (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {self.cte}\r\n\r\n'
        ).encode("ascii")
        data = raw.replace("\n", "\r\n").encode("utf-8")
        if by_marker:
            pattern = re.compile("|".join(re.escape(m) for m in by_marker).encode("ascii"))
            pieces = pattern.split(data)
            markers = [by_marker[m.decode("ascii")] for m in pattern.findall(data)]
        else:
            pieces, markers = [data], []
        # pieces[0], markers[0], pieces[1], markers[1], ..., pieces[-1]
        self.pieces = pieces
        self.markers = markers

    def body(self, values: dict[str, bytes]) -> bytes:
        if self.markers:
            chunks = [self.pieces[0]]
            for name, piece in zip(self.markers, self.pieces[1:], strict=True):
                chunks.append(values[name])
                chunks.append(piece)
            data = b"".join(chunks)
        else:
            data = self.pieces[0]
        if self.cte == "quoted-printable":
            return binascii.b2a_qp(data, istext=True)
        if self.cte == "base64":
            encoded = binascii.b2a_base64(data, newline=False)
            return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + CRLF
        return data


class PreparedDigest:
    """A rendered digest made ready for fast personalisation: shared headers folded,
    parts encoded or split at their placeholders, a MIME boundary chosen."""

    def __init__(
        self,
        mail: MailSettings,
        *,
        subject: str,
        text: str,
        html: str,
        placeholders: dict[str, str],
        unsubscribe_headers: bool = True,
    ):
        self.parts = [
            _Part(text, "plain", placeholders),
            _Part(html, "html", placeholders),
        ]
        self.size = sum(len(piece) for part in self.parts for piece in part.pieces)
        boundary = f"=_alerts_{secrets.token_hex(12)}"
        self._open = f"--{boundary}\r\n".encode("ascii")
        self._close = f"\r\n--{boundary}--\r\n".encode("ascii")
        self._between = f"\r\n--{boundary}\r\n".encode("ascii")
        addresses, site = mail.email, mail.site
        headers = [
            _fold("From", addresses.from_address),
            _fold("Subject", one_line(subject)),
            b"MIME-Version: 1.0\r\n",
            b"Auto-Submitted: auto-generated\r\n",
            b"Precedence: bulk\r\n",
            _fold("List-Id", f"{one_line(site.name)} <alerts.{addresses.domain}>"),
        ]
        if unsubscribe_headers:
            headers.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        self.unsubscribe_headers = unsubscribe_headers
        if addresses.reply_to:
            headers.append(_fold("Reply-To", addresses.reply_to))
        headers.append(
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode("ascii")
        )
        self._headers = b"".join(headers)
        self._mailto = (
            f", <mailto:{addresses.unsubscribe_mailbox}?subject=unsubscribe>".encode("ascii")
            if addresses.unsubscribe_mailbox
            else b""
        )

    @classmethod
    def from_rendered(cls, rendered: RenderedDigest, mail: MailSettings) -> PreparedDigest:
        return cls(
            mail,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            placeholders=rendered.placeholders,
        )

    @classmethod
    def from_stored(cls, digest: StoredDigest, mail: MailSettings) -> PreparedDigest:
        """From a stored digest (a transactional one, such as a confirmation, gets no
        List-Unsubscribe headers: there is no subscription to leave yet)."""
        meta = digest.meta
        return cls(
            mail,
            subject=digest.subject,
            text=digest.text,
            html=digest.html,
            placeholders=dict(meta.get("placeholders") or {}),
            unsubscribe_headers=not meta.get("transactional"),
        )

    def compose(self, item: OutboxItem, links: PersonalLinks, when: datetime) -> bytes:
        """The whole message for one subscriber, CRLF line ends."""
        if not _MESSAGE_ID.match(item.message_id):
            raise MessageError(
                f"bad Message-ID {item.message_id!r}", where=f"outbox {item.outbox_id}"
            )
        values = {
            "unsubscribe_url": links.unsubscribe_url.encode("ascii"),
            "manage_url": links.manage_url.encode("ascii"),
        }
        if any(len(value) > _LONGEST_LINK for value in values.values()):
            # The encodings were chosen for links up to this long (lines <= 998).
            raise MessageError(
                f"personal links longer than {_LONGEST_LINK} characters",
                where="site.base_url",
                hint="use a shorter base URL",
            )
        text, html = self.parts
        return b"".join(
            (
                _date_header(when),
                b"Message-ID: ",
                item.message_id.encode("ascii"),
                CRLF,
                recipient_header(item),
                self._unsubscribe(links),
                self._headers,
                CRLF,
                self._open,
                text.head,
                text.body(values),
                self._between,
                html.head,
                html.body(values),
                self._close,
            )
        )

    def _unsubscribe(self, links: PersonalLinks) -> bytes:
        if not self.unsubscribe_headers:
            return b""
        return (
            b"List-Unsubscribe: <"
            + links.one_click_url.encode("ascii")
            + b">"
            + self._mailto
            + CRLF
        )


@functools.lru_cache(maxsize=16)
def _date_header(when: datetime) -> bytes:
    # Formatting costs more than the rest of the shared headers; a run sends many
    # messages a second, and build() drops the microseconds so they share one line.
    return b"Date: " + format_datetime(when).encode("ascii") + CRLF


def recipient_header(item: OutboxItem) -> bytes:
    """The To header, display name included and safely encoded; no newline can get in."""
    address = item.email.strip()
    if "\r" in address or "\n" in address or not address:
        raise MessageError(f"bad address {item.email!r}", where=f"subscriber {item.subscriber_id}")
    name = one_line(item.name or "")
    if _SIMPLE_ADDRESS.match(address):
        if not name:
            line = f"To: {address}\r\n"
        elif _PRINTABLE_ASCII.match(name):
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            line = f'To: "{quoted}" <{address}>\r\n'
        else:
            # One RFC 2047 encoded word (at most 75 characters) when the name fits in one.
            word = binascii.b2a_base64(name.encode("utf-8"), newline=False).decode("ascii")
            line = f"To: =?utf-8?b?{word}?= <{address}>\r\n" if len(word) <= 63 else ""
        if 0 < len(line) <= 78:
            return line.encode("ascii")
    # Non-ASCII or long: let the email package encode and fold it (the slow path).
    try:
        from email.headerregistry import Address

        value = str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError, TypeError) as exc:
        raise MessageError(
            f"bad address {item.email!r}: {exc}", where=f"subscriber {item.subscriber_id}"
        ) from None
    if address.isascii():
        return _fold("To", value)
    return _fold("To", value, email.policy.SMTPUTF8)


def _fold(
    name: str, value: str, policy: email.policy.EmailPolicy[EmailMessage] = _HEADER_POLICY
) -> bytes:
    """A header line, RFC 2047-encoded where needed and folded by the email package."""
    header = policy.header_factory(name, one_line(value))
    folded: str = header.fold(policy=policy)
    return folded.encode("utf-8" if policy.utf8 else "ascii")


class _Finished:
    """A message queued complete: every recipient-specific header is already in it."""

    def __init__(self, raw: str):
        self.data = raw.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        self.size = len(self.data)

    def compose(self, item: OutboxItem, links: PersonalLinks, when: datetime) -> bytes:
        return self.data


class MessageFactory:
    """Builds outbox items into messages (bytes). Keeps the most recently used digests
    prepared; safe to share between delivery threads."""

    def __init__(
        self,
        mail: MailSettings,
        store: Store,
        clock: Callable[[], datetime],
        *,
        cache_bytes: int = 32_000_000,
    ):
        self.mail = mail
        self.store = store
        self.clock = clock
        self.signer = LinkSigner(self.mail.site.base_url, self.mail.security)
        self._zone = self.mail.tz
        # Bounded by size, not count: delivery takes rows in queue order, which
        # interleaves the variants of a run, so many digests are in use at once.
        self._cache: collections.OrderedDict[int, PreparedDigest | _Finished] = (
            collections.OrderedDict()
        )
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def build(self, item: OutboxItem) -> bytes:
        """The full RFC 5322 message for ``item``, ready for the relay."""
        prepared = self.prepared(item.digest_id)
        when = self.clock().astimezone(self._zone).replace(microsecond=0)
        return prepared.compose(
            item, self.signer.links(item.subscriber_id, when, item.link_key), when
        )

    def prepared(self, digest_id: int) -> PreparedDigest | _Finished:
        with self._lock:
            cached = self._cache.get(digest_id)
            if cached is not None:
                self._cache.move_to_end(digest_id)
                return cached
        stored = self.store.digests.get(digest_id)
        if stored is None:
            raise NotFound(f"no digest {digest_id}", where="outbox")
        meta = stored.meta
        if meta.get("transactional") and meta.get("raw"):
            # Queued finished (a confirmation email): send it as it is.
            prepared: PreparedDigest | _Finished = _Finished(str(meta["raw"]))
        else:
            prepared = PreparedDigest.from_stored(stored, self.mail)
        with self._lock:
            if digest_id not in self._cache:
                self._cache[digest_id] = prepared
                self._cached_bytes += prepared.size
            while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
                self._cached_bytes -= self._cache.popitem(last=False)[1].size
        return prepared
