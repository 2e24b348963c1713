"""Signed tokens for the links in mail: unsubscribe, manage preferences, confirm, and
undo (a one-click that ended a coordinator's forwardable subscription).

A token is the subscriber id signed with a key only this installation knows
(itsdangerous, HMAC-SHA256) and a salt per purpose, so it cannot be forged, guessed
from someone else's id, or used for another purpose than the one it was made for. The
payload is not secret (it is only signed), so a token never names an email address.

A token also carries the subscriber's own random ``link_key`` (a column of their row,
made when the row is), and a link acts only on the row whose key it carries
(:func:`link_fits`): so the links of a person who was erased or purged act on nobody,
even on a database whose ids were once reused. Tokens made before keys travelled in
them (the id alone) still work for the rows they were made for: those that existed
when the token was issued (an unsubscribe link never expires).

Times are the caller's: a token is stamped with the ``issued`` moment it is given and
checked against the ``now`` it is given (business time from :class:`alerts.clock.Clock`),
so nothing here reads the system clock and tests can move time at will.

The key comes from the environment variable named by ``security.secret_key_env``;
when that is unset, from ``security.secret_key_file``, created with a random key (mode
0600) the first time it is needed, so a fresh install works without setup and its links
keep working across restarts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

from alerts.config import SecurityConfig
from alerts.errors import BadToken, ConfigError
from alerts.types import Frequency

log = logging.getLogger(__name__)

UNSUBSCRIBE = "unsubscribe"
MANAGE = "manage"
CONFIRM = "confirm"
#: The link mailed to a coordinator whose forwardable subscription a one-click ended.
UNDO = "undo"
PURPOSES = frozenset({UNSUBSCRIBE, MANAGE, CONFIRM, UNDO})
#: How long a manage link works. Every email carries a fresh one, and the "Manage your
#: subscription" page mails one on request, so an old link found in a mailbox or a
#: forwarded message stops working. Unsubscribe links never expire: leaving must always
#: work, from the oldest email.
MANAGE_MAX_AGE = 30 * 24 * 3600
#: How long an undo link works (it also stops once used, or once anything changed).
UNDO_MAX_AGE = 30 * 24 * 3600
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link confirms: the subscriber, and the preferences the email
    stated, signed into the link so that what is confirmed is what was mailed (a later
    sign-up for the same address cannot change it). ``areas`` is None for a link made
    before preferences travelled in it: then the stored ones are confirmed."""

    subscriber_id: int
    areas: tuple[str, ...] | None = None
    frequency: Frequency | None = None
    urgent: bool | None = None
    #: When the link was made (set by verify_confirmation).
    issued_at: datetime | None = None
    #: The subscriber's link key (None in a link made before keys travelled in links).
    key: str | None = None
    #: The edition chosen (None in a link made before it travelled in links).
    forwardable: bool | None = None


@dataclass(frozen=True)
class LinkClaim:
    """What a verified token says: made for ``subscriber_id`` (whose row holds ``key``;
    None for a token made before keys travelled in links) at ``issued_at``."""

    subscriber_id: int
    key: str | None
    issued_at: datetime


@dataclass(frozen=True)
class UndoClaim:
    """What a verified undo link says: it undoes the one-click that ended the
    subscription of ``subscriber_id`` (whose row holds ``key``) at ``left_at``."""

    subscriber_id: int
    key: str
    left_at: datetime
    issued_at: datetime

    @property
    def link(self) -> LinkClaim:
        return LinkClaim(self.subscriber_id, self.key, self.issued_at)


@dataclass(frozen=True)
class PersonalLinks:
    """The links one subscriber's mail carries. ``one_click_url`` is the RFC 8058
    POST target for ``List-Unsubscribe``; the other two open a page that asks first."""

    unsubscribe_url: str
    manage_url: str
    one_click_url: str


class LinkSigner:
    """Makes and checks the signed tokens in personal links. Cheap to call per message."""

    def __init__(self, base_url: str, security: SecurityConfig):
        self.base_url = base_url
        # itsdangerous signs with the last key of the list and verifies with them all.
        keys = list(reversed(load_secret_keys(security)))
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                keys, salt=f"area-alerts.{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
            )
            for purpose in PURPOSES
        }
        # token() runs twice per message: itsdangerous would build a signer, derive its
        # key and start an HMAC on every call, so do that once per purpose here.
        self._macs = {
            purpose: hmac.new(serializer.make_signer().derive_key(), digestmod=hashlib.sha256)
            for purpose, serializer in self._serializers.items()
        }

    def token(
        self, subscriber_id: int, purpose: str, issued: datetime, key: str | None = None
    ) -> str:
        """A URL-safe token that proves ``purpose`` for ``subscriber_id`` (whose row holds
        ``key``), stamped with ``issued``: what ``URLSafeTimedSerializer.dumps`` makes,
        except that the payload is never compressed (dumps compresses only ids with long
        runs of digits, such as 10**12; verify() reads both). Without ``key`` it is the
        old form, the id alone."""
        self._serializer(purpose)  # rejects an unknown purpose
        if key is None:
            return self._stamp(purpose, base64_encode(b"%d" % int(subscriber_id)), issued)
        return self._stamp(
            purpose, base64_encode(b'[%d,"%s"]' % (int(subscriber_id), _checked_key(key))), issued
        )

    def _stamp(self, purpose: str, payload: bytes, issued: datetime) -> str:
        """``payload``, the issue time and their MAC, as itsdangerous's TimestampSigner
        lays them out (so its ``loads`` checks what this makes)."""
        value = payload + b"." + base64_encode(int_to_bytes(int(issued.timestamp())))
        mac = self._macs[purpose].copy()
        mac.update(value)
        return (value + b"." + base64_encode(mac.digest())).decode("ascii")

    def _load(
        self, token: str, purpose: str, now: datetime, max_age: int | None
    ) -> tuple[Any, datetime]:
        """The payload and issue time of a token signed for ``purpose``; raises
        :class:`BadToken` when it is forged or tampered with, or older than ``max_age``
        seconds at ``now``. The age is ours to check (itsdangerous would read the system
        clock); a link stamped a little ahead of ``now`` (another process's clock) is new."""
        serializer = self._serializer(purpose)
        try:
            value, issued_at = serializer.loads(token, return_timestamp=True)
        except BadData:
            hint = "copy the whole link from the email" + (
                "" if purpose == CONFIRM else ", or ask for a new one"
            )
            raise BadToken(f"this {purpose} link is not valid", hint=hint) from None
        issued_at = issued_at.astimezone(UTC)
        if max_age is not None and (now - issued_at).total_seconds() > max_age:
            hint = "subscribe again for a new link" if purpose == CONFIRM else "ask for a new link"
            raise BadToken(f"this {purpose} link has expired", expired=True, hint=hint)
        return value, issued_at

    def verify(self, token: str, purpose: str, now: datetime, max_age: int | None = None) -> int:
        """The subscriber id a token was made for. Raises :class:`BadToken` when it was
        tampered with, made for another purpose, or is older than ``max_age`` seconds at
        ``now``. (Whether it fits the row that has the id now is :func:`link_fits`.)"""
        return self.read(token, purpose, now, max_age).subscriber_id

    def read(
        self, token: str, purpose: str, now: datetime, max_age: int | None = None
    ) -> LinkClaim:
        """What a token says: the id, the key and the issue time. Raises :class:`BadToken`
        as :meth:`verify` does."""
        value, issued_at = self._load(token, purpose, now, max_age)
        key = None
        # A validly signed token only ever holds what token() put in, but be strict anyway.
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
            value, key = value
        if not _is_id(value):
            raise BadToken(f"this {purpose} link is not valid")
        return LinkClaim(value, key, issued_at)

    def links(self, subscriber_id: int, issued: datetime, key: str | None = None) -> PersonalLinks:
        """The personal links for one subscriber's mail (whose row holds ``key``), made at
        ``issued``. Tokens are URL-safe base64 and dots, so they go into a query string
        as they are."""
        unsubscribe = self.token(subscriber_id, UNSUBSCRIBE, issued, key)
        manage = self.token(subscriber_id, MANAGE, issued, key)
        return PersonalLinks(
            unsubscribe_url=f"{self.base_url}/unsubscribe?token={unsubscribe}",
            manage_url=f"{self.base_url}/manage?token={manage}",
            one_click_url=f"{self.base_url}/unsubscribe/one-click?token={unsubscribe}",
        )

    def confirm_url(self, confirmation: Confirmation, issued: datetime) -> str:
        """The link in a confirmation email, carrying the preferences it states."""
        return f"{self.base_url}/confirm?token={self.confirm_token(confirmation, issued)}"

    def confirm_token(self, confirmation: Confirmation, issued: datetime) -> str:
        if (
            confirmation.areas is None
            or confirmation.frequency is None
            or confirmation.urgent is None
        ):
            return self.token(confirmation.subscriber_id, CONFIRM, issued, confirmation.key)
        payload: list[Any] = [
            int(confirmation.subscriber_id),
            list(confirmation.areas),
            Frequency(confirmation.frequency).value,
            int(confirmation.urgent),
        ]
        if confirmation.key is not None:
            payload.append(_checked_key(confirmation.key).decode("ascii"))
            if confirmation.forwardable is not None:
                payload.append(int(confirmation.forwardable))
        return self._stamp(CONFIRM, self._serializers[CONFIRM].dump_payload(payload), issued)

    def verify_confirmation(
        self, token: str, now: datetime, max_age: int | None = None
    ) -> Confirmation:
        """What a confirmation token confirms. Raises :class:`BadToken` as verify() does."""
        value, issued_at = self._load(token, CONFIRM, now, max_age)
        if _is_id(value):
            return Confirmation(
                value, issued_at=issued_at
            )  # made before preferences travelled in links
        if (
            isinstance(value, list)
            and len(value) == 2
            and _is_id(value[0])
            and isinstance(value[1], str)
        ):
            return Confirmation(value[0], issued_at=issued_at, key=value[1])
        try:
            subscriber_id, areas, frequency, urgent, *rest = value
            confirmation = Confirmation(
                subscriber_id=int(subscriber_id),
                areas=tuple(str(area) for area in areas),
                frequency=Frequency(frequency),
                urgent=bool(urgent),
                issued_at=issued_at,
                key=str(rest[0]) if rest else None,
                forwardable=bool(rest[1]) if len(rest) > 1 else None,
            )
        except (TypeError, ValueError):
            raise BadToken("this confirm link is not valid") from None
        if confirmation.subscriber_id < 1 or not confirmation.areas:
            raise BadToken("this confirm link is not valid")
        return confirmation

    def undo_url(self, subscriber_id: int, key: str, left_at: datetime, issued: datetime) -> str:
        """The link that undoes the one-click which ended a subscription at ``left_at``."""
        payload = [int(subscriber_id), _checked_key(key).decode("ascii"), _instant(left_at)]
        token = self._stamp(UNDO, self._serializers[UNDO].dump_payload(payload), issued)
        return f"{self.base_url}/undo?token={token}"

    def read_undo(self, token: str, now: datetime, max_age: int | None = UNDO_MAX_AGE) -> UndoClaim:
        """What an undo link undoes. Raises :class:`BadToken` as verify() does."""
        value, issued_at = self._load(token, UNDO, now, max_age)
        try:
            subscriber_id, key, left_at = value
            claim = UndoClaim(
                int(subscriber_id), str(key), datetime.fromisoformat(left_at), issued_at
            )
        except (TypeError, ValueError):
            raise BadToken("this undo link is not valid") from None
        if not _is_id(claim.subscriber_id) or claim.left_at.tzinfo is None:
            raise BadToken("this undo link is not valid")
        return claim

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        try:
            return self._serializers[purpose]
        except KeyError:
            raise ValueError(
                f"unknown token purpose {purpose!r}; one of {sorted(PURPOSES)}"
            ) from None


def new_link_key() -> str:
    """A random key for a new subscriber row, carried in every link made for it."""
    return secrets.token_urlsafe(12)


def link_fits(
    claim: LinkClaim | Confirmation, row_key: str | None, created_at: datetime | None
) -> bool:
    """Whether a link was made for the row that now has its id (whose ``link_key`` is
    ``row_key``, created at ``created_at``). A keyed link fits the row holding its key.
    A link of the old form (the id alone, made before keys travelled in links) fits a row
    that already existed when it was made: a row that came later with the same id (an
    id reused after an erasure, before ids were never reused) is not the one it was
    made for."""
    if claim.key is not None:
        return row_key is not None and hmac.compare_digest(claim.key.encode(), row_key.encode())
    if claim.issued_at is None or created_at is None:
        return False
    # Tokens are stamped in whole seconds.
    return int(claim.issued_at.timestamp()) >= int(created_at.timestamp())


def _instant(moment: datetime) -> str:
    """A moment to the microsecond, in UTC, as an undo link carries it."""
    return moment.astimezone(UTC).isoformat()


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _checked_key(key: str) -> bytes:
    """A link key as it goes into a payload: URL-safe characters only, so it needs no
    escaping in JSON and a key cannot change the payload's shape."""
    if not key or not all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        raise ValueError("a link key is URL-safe base64")
    return key.encode("ascii")


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for this use from a signing key."""
    return peppered_hash(derived_pepper(key), value)


def derived_pepper(key: bytes) -> bytes:
    """The key :func:`keyed_hash` derives from a signing key: what the opt-out pepper kept
    in the database is made from, so that hashes made before it still match."""
    return hmac.new(key, b"area-alerts.keyed-hash", hashlib.sha256).digest()


def peppered_hash(pepper: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``pepper``."""
    return hmac.new(pepper, value.encode("utf-8"), hashlib.sha256).hexdigest()


def mailbox_hashes(security: SecurityConfig, email: str) -> list[str]:
    """The keyed hash of a mailbox (the whole address in lower case) under each signing
    key, the current one first: what is kept of an address once it may not be kept
    itself. A key that is replaced keeps matching while it is listed as an older key."""
    mailbox = email.strip().lower()
    return [keyed_hash(key, mailbox) for key in load_secret_keys(security)]


@functools.lru_cache(maxsize=8)
def link_signer(base_url: str, security: SecurityConfig) -> LinkSigner:
    """The signer for links under ``base_url`` (``site.base_url``), made once: the key is
    read (or the key file made) on first use, not on every page or confirmation email."""
    return LinkSigner(base_url, security)


def load_secret_key(security: SecurityConfig) -> bytes:
    """The signing key: from the environment, else from the key file (created if absent)."""
    return load_secret_keys(security)[0]


def load_secret_keys(security: SecurityConfig) -> list[bytes]:
    """The signing key first, then any older keys that still verify. The variable may
    hold several keys separated by spaces, so a key can be replaced without breaking
    the links in mail already sent: put the new one first, drop the old one later.
    ``security.secret_key_file`` is used as given (the config resolved it against its folder)."""
    value = os.environ.get(security.secret_key_env)
    if value is None:
        return [_key_from_file(security.secret_key_file)]
    keys = value.split()
    if not keys or any(len(key) < MIN_KEY_LENGTH for key in keys):
        raise ConfigError(
            f"a signing key in ${security.secret_key_env} is shorter than {MIN_KEY_LENGTH} characters",
            where="security.secret_key_env",
            hint=f"set it to a long random value, e.g. $(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or unset it to use {security.secret_key_file}",
        )
    return [key.encode() for key in keys]


def _key_from_file(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = _create_key_file(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the signing key file: {exc.strerror}",
            where=str(path),
            hint="check security.secret_key_file in config.yaml, or set security.secret_key_env",
        ) from None
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"the signing key file holds fewer than {MIN_KEY_LENGTH} characters",
            where=str(path),
            hint="delete it to have a new random key made (links already sent stop working)",
        )
    return key


def _create_key_file(path: Path) -> bytes:
    key = secrets.token_urlsafe(48).encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
        # link() publishes the finished file atomically and fails if another process
        # made one first: then its key wins, so both processes sign alike.
        os.link(temporary, path)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot create the signing key file: {exc.strerror}",
            where=str(path),
            hint="make its folder writable, or set security.secret_key_env",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    log.warning(
        "Created a new random key for signing links in %s (keep it: links already sent depend on it)",
        path,
    )
    return key
