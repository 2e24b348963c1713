"""DKIM signing (dkimpy), relaxed/relaxed, over the headers a receiver relies on.

dkimpy's default header set leaves ``List-Unsubscribe-Post`` out; a receiver that sees
it unsigned may ignore RFC 8058 one-click unsubscribe, so it is listed here.
"""

from __future__ import annotations

from pathlib import Path

import dkim

from alerts.config import DkimConfig
from alerts.errors import ConfigError

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-archive",
    b"auto-submitted",
)


class DkimSigner:
    """Prepends a ``DKIM-Signature`` header to finished message bytes."""

    def __init__(self, domain: str, selector: str, private_key: bytes):
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.private_key = private_key

    @classmethod
    def from_config(cls, settings: DkimConfig) -> DkimSigner:
        """Read and check the key at start-up, not on the first message."""
        where = "delivery.dkim.key_file"
        try:
            key = Path(settings.key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the DKIM key {settings.key_file}: {exc.strerror or exc}",
                where=where,
                hint="give the path of the PEM private key whose public half is published in DNS",
            ) from None
        try:
            dkim.crypto.parse_pem_private_key(key)
        except (dkim.crypto.UnparsableKeyError, ValueError, IndexError) as exc:
            raise ConfigError(
                f"{settings.key_file} is not an RSA private key in PEM form: {exc}",
                where=where,
                hint="give the PEM file that starts with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----",
            ) from None
        if not settings.domain.isascii() or not settings.selector.isascii():
            raise ConfigError("domain and selector must be ASCII (use the punycode form)", where="delivery.dkim")
        return cls(settings.domain, settings.selector, key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return signature + message
