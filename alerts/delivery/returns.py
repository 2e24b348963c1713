"""Per-message return paths (VERP): ``bounces+<token>@<domain>``, so that a bounce that
comes later, by mail, names the message it is about, and cannot be forged.

The token is the outbox row and its subscriber, signed with this installation's secret
key (HMAC-SHA256, 80 bits kept) and written in lower-case base32: mail systems may fold
the local part's case, and base32 survives that. The local part stays within the 64
octets RFC 5321 allows. A bounce is acted on only when its token verifies, so a forged
bounce naming a resident's address suppresses nobody.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

#: RFC 5321 4.5.3.1.1.
MAX_LOCAL_PART = 64
_MAC_BYTES = 10
_ID_BYTES = 8
_SALT = b"area-alerts.return-path"


@dataclass(frozen=True)
class Returned:
    """Whom a verified return path names."""

    outbox_id: int
    subscriber_id: int


class ReturnPaths:
    """Makes and verifies return paths. ``keys``: the installation's secret keys, the
    first signs and every one verifies (so a key can be rotated)."""

    def __init__(
        self,
        keys: Sequence[str | bytes],
        *,
        domain: str,
        prefix: str = "bounces",
        delimiter: str = "+",
    ):
        if not keys:
            raise ValueError("ReturnPaths needs at least one key")
        self.domain = domain.lower()
        self.prefix = prefix.lower()
        self.delimiter = delimiter
        self._keys = [
            hashlib.sha256(_SALT + (k.encode() if isinstance(k, str) else k)).digest() for k in keys
        ]
        local = len(self.prefix) + len(delimiter) + len(self._token(0, 0))
        if local > MAX_LOCAL_PART:
            raise ValueError(
                f"the return path's local part would be {local} octets; RFC 5321 allows {MAX_LOCAL_PART}"
            )

    def address(self, outbox_id: int, subscriber_id: int) -> str:
        """The envelope sender for this message."""
        return f"{self.prefix}{self.delimiter}{self._token(outbox_id, subscriber_id)}@{self.domain}"

    def verify(self, address: str) -> Returned | None:
        """Whom ``address`` names, if it is one of ours and its signature verifies."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        head, delimiter, token = local.lower().partition(self.delimiter)
        if not delimiter or head != self.prefix:
            return None
        try:
            raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
        except ValueError:
            return None
        if len(raw) != _MAC_BYTES + 2 * _ID_BYTES:
            return None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in self._keys):
            return None
        return Returned(
            int.from_bytes(payload[:_ID_BYTES], "big"), int.from_bytes(payload[_ID_BYTES:], "big")
        )

    def _token(self, outbox_id: int, subscriber_id: int) -> str:
        payload = outbox_id.to_bytes(_ID_BYTES, "big") + subscriber_id.to_bytes(_ID_BYTES, "big")
        raw = self._mac(self._keys[0], payload) + payload
        return base64.b32encode(raw).decode("ascii").rstrip("=").lower()

    @staticmethod
    def _mac(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def organisational_domain(domain: str) -> str:
    """The last two labels of ``domain`` (three under a two-letter country's second
    level such as ``.gov.uk`` or ``.co.uk``): enough to check that a return path and
    From align for SPF and DMARC in the common cases, without a public-suffix list."""
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


_SECOND_LEVELS = frozenset(
    {"co", "org", "gov", "ac", "net", "ltd", "plc", "sch", "nhs", "police", "me", "com", "edu"}
)
