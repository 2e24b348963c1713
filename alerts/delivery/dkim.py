"""DKIM signing (RFC 6376) with OpenSSL through ``cryptography``: relaxed/relaxed, over
the headers a receiver relies on, RSA-SHA256 and optionally Ed25519-SHA256 as well
(RFC 8463: the receivers that know Ed25519 check that one, the rest the RSA one).

``List-Unsubscribe-Post`` is signed: a receiver that sees it unsigned may ignore
RFC 8058 one-click unsubscribe. OpenSSL signs RSA-2048 in about half a millisecond and
lets go of the GIL meanwhile, so the delivery workers sign while other messages are on
the wire (dkimpy's pure-Python RSA took 7-8 ms a message and held it).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

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
#: RSA keys shorter than this are refused (RFC 8301: verifiers ignore them).
MIN_RSA_BITS = 1024

_FOLD = re.compile(rb"\r\n(?=[ \t])")


@dataclass(frozen=True)
class _Key:
    """One signing key: its algorithm tag, selector, and the function that signs."""

    algorithm: bytes
    selector: bytes
    sign: Callable[[bytes], bytes]


class DkimSigner:
    """Prepends ``DKIM-Signature`` headers to finished message bytes (CRLF line ends).
    Thread-safe: the delivery workers share one."""

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: rsa.RSAPrivateKey,
        *,
        ed25519_key: tuple[str, ed25519.Ed25519PrivateKey] | None = None,
        clock: Callable[[], float],
    ):
        self.domain = domain.encode("ascii")
        self.clock = clock
        self.keys = [_Key(b"rsa-sha256", selector.encode("ascii"), _rsa_signer(private_key))]
        if ed25519_key is not None:
            ed_selector, ed_private = ed25519_key
            # RFC 8463 section 3: Ed25519 signs the SHA-256 hash of the signed data.
            self.keys.append(
                _Key(
                    b"ed25519-sha256",
                    ed_selector.encode("ascii"),
                    lambda data: ed_private.sign(_sha256(data)),
                )
            )

    @classmethod
    def from_config(cls, settings: DkimConfig, clock: Callable[[], float]) -> DkimSigner:
        """Read and check the keys at start-up, not on the first message."""
        for where, value in (
            ("delivery.dkim.domain", settings.domain),
            ("delivery.dkim.selector", settings.selector),
        ):
            if not value.isascii() or not value or any(c.isspace() or c in ";=" for c in value):
                raise ConfigError(
                    f"not a DKIM name: {value!r}", where=where, hint="use the ASCII (punycode) form"
                )
        key = _load(settings.key_file, "delivery.dkim.key_file", "an RSA")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(
                f"{settings.key_file} is not an RSA private key",
                where="delivery.dkim.key_file",
                hint="give the RSA key here; an Ed25519 key goes in ed25519_key_file",
            )
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{settings.key_file} is a {key.key_size}-bit RSA key; receivers ignore signatures under 1024 bits",
                where="delivery.dkim.key_file",
                hint="make a 2048-bit key: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
            )
        second: tuple[str, ed25519.Ed25519PrivateKey] | None = None
        if settings.ed25519_key_file is not None and settings.ed25519_selector is not None:
            ed_key = _load(
                settings.ed25519_key_file, "delivery.dkim.ed25519_key_file", "an Ed25519"
            )
            if not isinstance(ed_key, ed25519.Ed25519PrivateKey):
                raise ConfigError(
                    f"{settings.ed25519_key_file} is not an Ed25519 private key",
                    where="delivery.dkim.ed25519_key_file",
                    hint="make one with: openssl genpkey -algorithm ed25519",
                )
            second = (settings.ed25519_selector, ed_key)
        return cls(settings.domain, settings.selector, key, ed25519_key=second, clock=clock)

    def sign(self, message: bytes) -> bytes:
        """``message`` with a ``DKIM-Signature`` header per key in front of it."""
        head, separator, body = message.partition(b"\r\n\r\n")
        if not separator:  # headers only: the body is empty
            head = head.removesuffix(b"\r\n")
        body_hash = base64.b64encode(_sha256(canonical_body(body)))
        fields = header_fields(head + b"\r\n")
        signed, names = _signed_fields(fields)
        timestamp = str(int(self.clock())).encode()
        added = []
        for key in self.keys:
            header = _fold(
                [
                    b"v=1",
                    b"a=" + key.algorithm,
                    b"c=relaxed/relaxed",
                    b"d=" + self.domain,
                    b"s=" + key.selector,
                    b"t=" + timestamp,
                    b"h=" + b":".join(names),
                    b"bh=" + body_hash,
                    b"b=",
                ]
            )
            data = signed + canonical_header(header)
            signature = base64.b64encode(key.sign(data))
            added.append(header + _fold_value(signature) + b"\r\n")
        return b"".join(added) + message


def canonical_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body: runs of white space made one space, white space at
    line ends dropped, empty lines at the end dropped, CRLF at the end if not empty.

    A body without a final CRLF gets one first, as SMTP gives it one on the wire."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = _one_space(body)
    # White space at a line end is now one space at most.
    body = body.replace(b" \r\n", b"\r\n").rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def canonical_header(field: bytes) -> bytes:
    """RFC 6376 3.4.2 relaxed header: the name in lower case, unfolded, runs of white
    space made one space, none around the colon or at the end (no CRLF added)."""
    name, _, value = field.partition(b":")
    value = _one_space(_FOLD.sub(b"", value).removesuffix(b"\r\n")).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value


def _one_space(text: bytes) -> bytes:
    """Every run of spaces and tabs made one space (bytes.replace runs at C speed; a
    regular expression took longer than the rest of the signing but RSA)."""
    if b"\t" in text:
        text = text.replace(b"\t", b" ")
    while b"  " in text:
        text = text.replace(b"    ", b" ").replace(b"  ", b" ")
    return text


def header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, whole field with its CRLF) for each header field, in order."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + line + b"\r\n")
        else:
            fields.append((line.partition(b":")[0].strip(b" \t").lower(), line + b"\r\n"))
    return fields


def _signed_fields(fields: list[tuple[bytes, bytes]]) -> tuple[bytes, list[bytes]]:
    """The canonical fields to sign and their names for ``h=``: each signed header that is
    present, every instance, the last first (RFC 6376 5.4.2)."""
    by_name: dict[bytes, list[bytes]] = {}
    for name, text in fields:
        by_name.setdefault(name, []).append(text)
    data: list[bytes] = []
    names: list[bytes] = []
    for name in SIGNED_HEADERS:
        for text in reversed(by_name.get(name, ())):
            data.append(canonical_header(text) + b"\r\n")
            names.append(name)
    return b"".join(data), names


def _fold(tags: list[bytes]) -> bytes:
    """``DKIM-Signature: tag; tag; ...`` folded before a tag where a line would pass 76."""
    out = b"DKIM-Signature: "
    line = len(out)
    for index, tag in enumerate(tags):
        piece = tag + (b";" if index < len(tags) - 1 else b"")
        if index and line + 1 + len(piece) > 76:
            out += b"\r\n "
            line = 1
        elif index:
            out += b" "
            line += 1
        out += piece
        line += len(piece)
    return out


def _fold_value(value: bytes, width: int = 72) -> bytes:
    """The signature, broken into lines (white space in ``b=`` is ignored)."""
    return b"\r\n ".join(value[i : i + width] for i in range(0, len(value), width))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _rsa_signer(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    scheme, digest = padding.PKCS1v15(), hashes.SHA256()
    return lambda data: key.sign(data, scheme, digest)


def _load(path: Path, where: str, kind: str) -> object:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the DKIM key {path}: {exc.strerror or exc}",
            where=where,
            hint="give the path of the PEM private key whose public half is published in DNS",
        ) from None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"{path} is not {kind} private key in PEM form (unencrypted): {str(exc).splitlines()[0]}",
            where=where,
            hint="give the PEM file that starts with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----",
        ) from None
