"""Two-step sign-in: time-based codes (TOTP, RFC 6238: six digits, 30-second steps,
SHA-1, as every authenticator app makes them), through pyotp.

Time comes from the one clock: :func:`matching_step` is given ``now`` and hands pyotp
the step number, so pyotp never reads the time itself. A code is accepted for the
current step or one step either side (a phone's clock a little off, a code typed as it
turned over), and each step only once: the store keeps the last step used
(:meth:`alerts.store.users.Users.use_totp_step`).

Secrets are kept encrypted (AES-GCM, a key derived from the site's signing key by
HMAC-SHA256 for this use alone, the user's name bound in as associated data), so a copy
of the database makes no codes without the key; all of the signing keys that still
verify (``load_secret_keys``) are tried, so a key can be replaced as for links. They are
shown once, at setup, to their owner; never listed, logged or audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import datetime

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alerts.errors import AlertsError

STEP_SECONDS = 30
DIGITS = 6
#: Steps either side of now whose codes are still accepted.
DRIFT = 1
ISSUER = "Area Alerts"


class SecretUnreadable(AlertsError):
    """A stored secret no signing key opens (the key was replaced and the old one dropped)."""


def new_secret() -> str:
    """160 random bits in base32, as RFC 4226 recommends."""
    return pyotp.random_base32(32)


def _key(signing_key: bytes) -> bytes:
    return hmac.new(signing_key, b"area-alerts.console-totp", hashlib.sha256).digest()


def encrypt(keys: list[bytes], name: str, secret: str) -> str:
    """Seal ``secret`` under the first signing key (``load_secret_keys``)."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(keys[0])).encrypt(nonce, secret.encode(), b"console-totp:" + name.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(keys: list[bytes], name: str, stored: str) -> str:
    """Open what :func:`encrypt` sealed, with whichever of the signing keys made it."""
    raw = base64.urlsafe_b64decode(stored.encode())
    for key in keys:
        try:
            return (
                AESGCM(_key(key))
                .decrypt(raw[:12], raw[12:], b"console-totp:" + name.encode())
                .decode()
            )
        except InvalidTag:
            continue
    raise SecretUnreadable(
        f"the two-step secret of {name!r} does not open with the signing key",
        hint=f"an admin resets it: 'alerts users totp-reset {name}'",
    )


def current_step(now: datetime) -> int:
    return pyotp.TOTP(pyotp.random_base32(), interval=STEP_SECONDS).timecode(now.timestamp())


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step (within :data:`DRIFT` of ``now``) whose code ``code`` is, or None. Every
    candidate is compared in constant time."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = totp.timecode(now.timestamp())
    found = None
    for step in range(now_step - DRIFT, now_step + DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def provisioning_uri(secret: str, name: str, site_name: str) -> str:
    """The ``otpauth://`` address an authenticator app reads (from the QR code, or typed)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=name, issuer_name=site_name or ISSUER
    )


def qr_svg(uri: str) -> str:
    """The address as a QR code, inline SVG (no script, no image request: the console's
    CSP stays strict). Black on white with a quiet zone, so dark mode still scans."""
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", border=4)
    return svg
