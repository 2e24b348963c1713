"""Load and validate ``config.yaml`` into one frozen, typed object.

Validation happens once, at start-up: an unknown key, a wrong type or a missing value
is a :class:`ConfigError` that names the key, so no command fails halfway through.
Relative paths are resolved against the directory that holds the config file.

It runs past 500 lines because it is the one list of every setting, each with the
comment that ``alerts init`` prints as its documentation; reading the file and describing
its mistakes live in :mod:`alerts.config_file`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import time
from email.utils import parseaddr
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alerts.config_file import DuplicateKey, UniqueKeyLoader, describe, line_of, resolve_paths
from alerts.errors import ConfigError
from alerts.templating import template_folders

DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "ALERTS_CONFIG"
DAY_SECONDS = 24 * 3600
DAY_MINUTES = 24 * 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Model(BaseModel):
    # No inf or nan: ".inf" passes "greater than 0" and overflows later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_kinds(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML's true/false are not numbers (``sent_days: true`` is not 1 day), and a switch
        # is true or false, not 1 or "yes": pydantic's lax mode would take both.
        kinds = _scalar_kinds(cls.model_fields[info.field_name or ""].annotation)
        if isinstance(value, bool) and kinds and bool not in kinds and kinds <= {int, float}:
            raise ValueError(f"must be a number, got {str(value).lower()}")
        if bool in kinds and not isinstance(value, bool) and value is not None:
            raise ValueError(f"must be true or false, got {value!r}")
        return value


def _scalar_kinds(annotation: Any) -> set[Any]:
    """The scalar types a field accepts: ``int | None`` -> {int, NoneType}."""
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return {arg for arg in args if arg in (int, float, bool)}


class Secret:
    """A secret read from the environment; never printed."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class SourceConfig(_Model):
    """One place advisories come from: a directory (or file) of advisory files, or a feed."""

    #: A folder (or one file) of advisory Markdown files.
    path: Path | None = None
    #: An upstream RSS or Atom feed (http or https URL).
    feed: str | None = None
    #: What metrics, logs and 'alerts status' call the source (letters, digits, ``. _ -``).
    #: Default: a folder's name, or a feed's host; required where two feeds share a host.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    #: The force area to assume for feed entries that name none (a slug such as ``kent``).
    area: str | None = None
    #: Seconds before an upstream request gives up.
    timeout: float = Field(default=20.0, gt=0, le=600)
    #: Largest upstream body accepted, in bytes.
    max_bytes: int = Field(default=5_000_000, gt=0, le=500_000_000)
    #: Folders outside ``path`` that symlinks in it may lead to (else they are skipped).
    symlink_targets: tuple[Path, ...] = ()
    #: Hosts (``host`` or ``host:port``) a feed may redirect to besides its own.
    redirect_hosts: tuple[str, ...] = ()
    #: A feed: minutes between polls (default ``scheduler.poll_minutes``).
    poll_minutes: float | None = Field(default=None, gt=0, le=10080)
    #: A folder: how changes are noticed. ``auto``: inotify, or polling where events do not
    #: come (a network filesystem, or inotify failing); ``inotify``; ``poll`` (every
    #: ``poll_seconds``); ``no``: only the ``scheduler.poll_minutes`` rescan.
    watch: Literal["auto", "inotify", "poll", "no"] = "auto"
    #: A folder polled for changes: seconds between looks.
    poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: A folder: a file is read only once nothing wrote to it for this many seconds (a file
    #: still being written is never read half-done).
    settle_seconds: float = Field(default=0.5, ge=0, le=3600)
    #: More new, recent advisories than this in one poll (a folder: in one minute) is a
    #: surge: the batch is held until an operator releases it (alerts.ingest.lifecycle).
    #: A force publishes a few a day, rarely ten in an hour; 0: never held.
    surge_limit: int = Field(default=20, ge=0, le=1_000_000)
    #: A folder: a deleted file's advisory is withdrawn this many hours later (unless the
    #: file comes back); null: deleting a file withdraws nothing.
    withdraw_deleted_hours: float | None = Field(default=24.0, ge=0, le=24 * 365)

    @field_validator("redirect_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[\w.-]+)(:\d{1,5})?", host):
                raise ValueError(
                    f"list host names such as feeds.example.org or feeds.example.org:8443, got {host!r}"
                )
        return tuple(host.lower() for host in value)

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        if (self.path is None) == (self.feed is None):
            raise ValueError(
                "give exactly one of 'path' (a folder of advisory files) or 'feed' (a URL)"
            )
        if self.feed is not None and not re.match(r"^https?://", self.feed):
            raise ValueError(f"feed must be an http(s) URL, got {self.feed!r}")
        if self.feed is not None and "watch" in self.model_fields_set:
            raise ValueError("'watch' is for folders; a feed is polled every 'poll_minutes'")
        if self.path is not None and "poll_minutes" in self.model_fields_set:
            raise ValueError(
                "'poll_minutes' is for feeds; a folder is watched (see 'watch' and 'poll_seconds')"
            )
        return self

    @property
    def label(self) -> str:
        """The source's name: given, else derived from what cannot hold a secret (a folder's
        last part; a feed's host and port, never its path, query or credentials)."""
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.name or str(self.path)
        parts = urlsplit(self.feed or "")
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class WebConfig(_Model):
    #: Addresses (or networks) of the reverse proxies whose X-Forwarded-For and
    #: X-Forwarded-Proto 'alerts web' believes; empty: none, each client is its own address.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(
                    f"list IP addresses or networks such as 127.0.0.1 or 10.0.0.0/8, got {address!r}"
                ) from None
        return value


class MonitoringConfig(_Model):
    #: ``/healthz`` also names the scheduler's host and pid and the database's error text
    #: (off: a load balancer needs only healthy or why not, and the rest helps an attacker).
    healthz_details: bool = False


class ConsoleConfig(_Model):
    #: Every admin must sign in with a code from an authenticator app as well as the
    #: password; an admin without one is sent to set it up before any other page.
    require_admin_totp: bool = False


class SiteConfig(_Model):
    #: The service's name, in page titles, feeds and mail.
    name: str = "Area Alerts"
    #: Public address of the web app (archive, subscribe, unsubscribe pages).
    base_url: str = "http://localhost:8000"
    #: Who publishes: shown in feeds and mail as the author.
    publisher: str = "Kent Police"
    #: Language tag of the pages, feeds and mail.
    language: str = "en-GB"

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        # Personal links are this plus a path: a query, a fragment or a user name in it
        # would break (or leak into) every one of them.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
            raise ValueError(
                f"must be an http(s) URL such as https://alerts.example.org, got {value!r}"
            )
        if parts.query or parts.fragment or "?" in value or "#" in value or "@" in parts.netloc:
            raise ValueError(
                f"must be an origin with an optional path (https://example.org/alerts), "
                f"without a query, fragment or user name, got {value!r}"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number up to 65535
        except ValueError:
            raise ValueError(f"has a bad port, got {value!r}") from None
        return value.rstrip("/")


class FeedsConfig(_Model):
    #: Folder the RSS and Atom files are written to (<area>.rss, <area>.atom, all.rss, all.atom).
    out: Path = Path("var/feeds")
    #: Newest advisories in each feed.
    max_items: int = Field(default=50, ge=1, le=1000)


class DigestsConfig(_Model):
    #: Advisories published longer ago than this when first ingested go to feeds only.
    max_age_days: int = Field(default=7, ge=0, le=3650)
    #: At most one "Updated" mail per advisory in this many hours, unless it is urgent.
    update_interval_hours: float = Field(default=24.0, ge=0, le=30 * 24)
    #: Advisories shown in full in one digest; the rest are linked on the web.
    max_items: int = Field(default=20, ge=1, le=1000)
    #: Separate alerts a subscriber gets in any hour; past it they are gathered into one
    #: message when the hour is up (alerts.digest.guard). Urgent ones have their own limit.
    alerts_per_hour: int = Field(default=4, ge=1, le=1000)
    #: Separate urgent alerts a subscriber gets in any hour (the rest are gathered too).
    urgent_per_hour: int = Field(default=10, ge=1, le=1000)
    #: Local time daily digests go out (HH:MM).
    daily_at: time = time(7, 0)
    #: Day weekly digests go out.
    weekly_day: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    #: Local time weekly digests go out (HH:MM).
    weekly_at: time = time(7, 0)


class EmailConfig(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: The From: of every message.
    from_address: str = Field(default="Area Alerts <alerts@localhost>", alias="from")
    #: Where replies go (and residents write about their data), if not to From.
    reply_to: str | None = None
    #: Domain for Message-IDs and the List-Id.
    domain: str = "localhost"
    #: Mailbox for mailto: one-click unsubscribe.
    unsubscribe_mailbox: str | None = None


class SmtpConfig(_Model):
    #: The relay's host name.
    host: str
    #: The relay's port; unset, 25 (security none), 587 (starttls) or 465 (ssl).
    port: int | None = Field(default=None, ge=1, le=65535)
    #: none, starttls or ssl (TLS from the start).
    security: Literal["none", "starttls", "ssl"] = "starttls"
    #: Log in as this user (needs starttls or ssl, and password_env).
    username: str | None = None
    #: Name of the environment variable that holds the password (never the password).
    password_env: str | None = None
    #: Seconds before a relay that does not answer is given up.
    timeout: float = Field(default=30.0, gt=0, le=600)
    #: Connections to the relay at once from each sender process ('alerts serve', each
    #: of its delivery.sender_processes, each 'alerts send').
    connections: int = Field(default=4, ge=1, le=64)
    #: Messages sent over one connection before it is renewed.
    per_connection: int = Field(default=100, ge=1, le=100_000)
    #: Messages per second across all connections; 0 means no limit.
    rate: float = Field(default=0.0, ge=0, le=100_000)
    #: CA certificates (PEM) to check the relay against, instead of the system's.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _safe(self) -> SmtpConfig:
        if self.username and self.security == "none":
            raise ValueError(
                "refusing to send credentials in clear: set security to starttls or ssl"
            )
        if self.username and not self.password_env:
            raise ValueError(
                "username is set but password_env (the variable holding the password) is not"
            )
        return self

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return {"none": 25, "starttls": 587, "ssl": 465}[self.security]

    def password(self) -> Secret | None:
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"environment variable {self.password_env} is not set",
                where="delivery.smtp.password_env",
                hint=f"export {self.password_env}=... before running",
            )
        return Secret(value)


class DkimConfig(_Model):
    #: The signing domain (d=).
    domain: str
    #: The RSA key's selector (s=).
    selector: str
    #: The RSA private key (PEM) whose public half is at ``<selector>._domainkey.<domain>``.
    key_file: Path
    #: A second signature with Ed25519 (RFC 8463), under a selector of its own.
    ed25519_selector: str | None = None
    #: The Ed25519 private key (PEM).
    ed25519_key_file: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> DkimConfig:
        if (self.ed25519_selector is None) != (self.ed25519_key_file is None):
            raise ValueError(
                "an Ed25519 signature needs both ed25519_selector and ed25519_key_file"
            )
        return self


class ReturnPathConfig(_Model):
    """Each message's own envelope sender, ``<prefix>+<signed id>@<domain>``, so that
    bounces that come later by mail name the message (VERP). Leave it off where the
    relay insists that MAIL FROM equal the account it logs in as."""

    #: Send each message with its own return path (needs the DNS records in the README).
    enabled: bool = False
    #: Default: the domain of ``email.from``. Must share its organisational domain.
    domain: str | None = None
    #: The local part before the '+' (lower case letters, digits, dots and dashes).
    prefix: str = Field(default="bounces", pattern=r"^[a-z0-9][a-z0-9.-]{0,15}$")


#: An IMAP folder name: ASCII letters, digits, spaces and ``. _ / [ ] + -`` (no quoting
#: or modified UTF-7 needed, no LIST wildcards).
_IMAP_FOLDER = r"^[A-Za-z0-9\[][A-Za-z0-9 ._/\[\]+-]{0,199}$"


class ImapConfig(_Model):
    """A bounce mailbox read over IMAP with TLS from the start (port 993, RFC 8314); the
    server's certificate is always verified."""

    #: The IMAP server's host name (as its certificate names it).
    host: str = Field(min_length=1)
    #: The port that speaks TLS at once (IMAPS).
    port: int = Field(default=993, ge=1, le=65535)
    #: Log in as this user.
    username: str = Field(pattern=r"^[^\x00-\x1f\x7f]{1,255}$")
    #: Name of the environment variable that holds the password (never the password).
    password_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: The folder the return path's mail is delivered to.
    folder: str = Field(default="INBOX", pattern=_IMAP_FOLDER)
    #: Move each message there once handled (made if missing); unset, handled messages
    #: stay where they are, flagged $AlertsCounted (and seen). Nothing is ever deleted.
    processed_folder: str | None = Field(default=None, pattern=_IMAP_FOLDER)
    #: CA certificates (PEM) to check the server against, instead of the system's.
    ca_file: Path | None = None
    #: Seconds one reading may take, from connecting to logging out; what is not read by
    #: then is read the next time.
    timeout: float = Field(default=120.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _distinct_folders(self) -> ImapConfig:
        if self.processed_folder is not None and self.processed_folder == self.folder:
            raise ValueError("processed_folder must differ from folder (or be left unset)")
        return self

    def password(self) -> Secret:
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"environment variable {self.password_env} is not set",
                where="delivery.bounces.imap.password_env",
                hint=f"export {self.password_env}=... (the bounce mailbox's password) before running",
            )
        if any(c in value for c in "\r\n\0"):
            raise ConfigError(
                f"the password in {self.password_env} holds a line break or NUL",
                where="delivery.bounces.imap.password_env",
                hint="IMAP cannot send such a password; export it without them",
            )
        return Secret(value)


class BouncesConfig(_Model):
    """Where bounces and complaints that come later are read from: a Maildir folder on
    this machine, or an IMAP mailbox (one of the two)."""

    #: A Maildir folder the return path's mail is delivered to.
    maildir: Path | None = None
    #: An IMAP mailbox the return path's mail is delivered to (instead of maildir).
    imap: ImapConfig | None = None
    #: How often ``alerts serve`` reads it.
    every_minutes: float = Field(default=5.0, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _one_mailbox(self) -> BouncesConfig:
        if self.maildir is not None and self.imap is not None:
            raise ValueError("give either maildir or imap (the one bounce mailbox), not both")
        return self

    @property
    def configured(self) -> bool:
        return self.maildir is not None or self.imap is not None


class DeliveryConfig(_Model):
    #: smtp (a relay) or maildir (files in a folder: for trying it out).
    backend: Literal["maildir", "smtp"] = "maildir"
    #: The Maildir folder for the maildir backend.
    maildir: Path = Path("var/maildir")
    #: The relay, for backend: smtp.
    smtp: SmtpConfig | None = None
    #: Sign messages with DKIM.
    dkim: DkimConfig | None = None
    #: Hard bounces after which an address is suppressed.
    max_bounces: int = Field(default=3, ge=1, le=100)
    #: First retry delay in seconds; doubles each attempt.
    retry_base: float = Field(default=60.0, gt=0, le=DAY_SECONDS)
    #: Longest retry delay in seconds.
    retry_max: float = Field(default=6 * 3600.0, gt=0, le=30 * DAY_SECONDS)
    #: Attempts after which a message is given up as failed.
    max_attempts: int = Field(default=12, ge=1, le=1000)
    #: Tries again after a body went out and no final reply came (it may have been
    #: delivered); then the message is ``unknown`` and never sent again by itself.
    max_unanswered: int = Field(default=2, ge=0, le=10)
    #: First wait after such a body, in seconds; doubles each time.
    unanswered_base: float = Field(default=600.0, gt=0, le=DAY_SECONDS)
    #: Each message's own return path (VERP), so bounces that come later name it; off by default.
    return_path: ReturnPathConfig = ReturnPathConfig()
    #: Where bounces and complaints that come later by mail are read ('alerts bounces').
    bounces: BouncesConfig = BouncesConfig()
    #: How long a sender holds the rows it claimed. Rows a crashed sender held go out
    #: again after this (on SQLite at once when the sender ran on this machine); keep it
    #: well above the time one batch takes to send.
    lease_seconds: float = Field(default=300.0, ge=10, le=DAY_SECONDS)
    #: Sender processes 'alerts serve' runs beside its own ('alerts send --follow'
    #: children), each on a core of its own with smtp.connections of its own: auto is
    #: one per core beyond the first (at most 3) on PostgreSQL with a relay, none on
    #: SQLite or with the Maildir.
    sender_processes: Annotated[int, Field(ge=0, le=16)] | Literal["auto"] = "auto"

    @model_validator(mode="after")
    def _smtp_present(self) -> DeliveryConfig:
        if self.backend == "smtp" and self.smtp is None:
            raise ValueError("backend is smtp but there is no 'smtp:' section with at least 'host'")
        return self


class SchedulerConfig(_Model):
    #: Minutes between 'alerts serve' runs (polling feeds, rescanning folders).
    poll_minutes: float = Field(default=10.0, gt=0, le=7 * DAY_MINUTES)
    #: A digest missed while stopped still goes out if the service is back within this.
    misfire_grace_minutes: float = Field(default=60.0 * 24, gt=0, le=30 * DAY_MINUTES)


class SecurityConfig(_Model):
    #: Environment variable holding the key that signs unsubscribe and manage links.
    secret_key_env: str = "ALERTS_SECRET_KEY"
    #: Used when that variable is unset: created with a random key on first use.
    secret_key_file: Path = Path("var/secret.key")


class RetentionConfig(_Model):
    """How long personal data is kept (``alerts purge`` applies it; the privacy notice
    states it). Days from the event: a message sent, a sign-up left unconfirmed, an
    address unsubscribed or suppressed (then kept only as a keyed hash, so that it is
    never added again)."""

    #: Days a sent message is kept.
    sent_days: int = Field(default=7, ge=0, le=3650)
    #: Days an unconfirmed sign-up is kept.
    pending_days: int = Field(default=7, ge=0, le=3650)
    #: Days an unsubscribed or suppressed address is kept before only its keyed hash remains.
    unsubscribed_days: int = Field(default=28, ge=0, le=3650)
    #: Days the operator console's audit log is kept (who did what, when); it names
    #: residents only by subscriber id or a masked address.
    audit_days: int = Field(default=365, ge=1, le=3650)
    #: Days the web server's access logs are kept (they hold client addresses). The
    #: privacy notice states it; rotate the logs to match (journald, logrotate).
    web_log_days: int = Field(default=14, ge=0, le=3650)


class ReviewTimeout(_Model):
    """One source's own answer to "what if nobody acts" (``review.per_source``)."""

    #: Minutes its advisories wait for a person (default ``review.wait_minutes``).
    wait_minutes: float | None = Field(default=None, gt=0, le=30 * DAY_MINUTES)
    #: Then ``keep`` them waiting or ``release`` them (default ``review.then``).
    then: Literal["keep", "release"] | None = None


class ReviewConfig(_Model):
    """Advisories that wait in the console's inbox for a person before anyone is mailed
    (alerts.ingest.review). Off until one of the first three keys is set."""

    #: Sources (by name) whose every new advisory waits for a person.
    sources: tuple[str, ...] = ()
    #: Advisories whose area decision carries a warning wait (it names no place, so goes to
    #: the whole force; it declares an area the gazetteer does not know).
    warnings: bool = False
    #: Advisories from a feed that would reach the whole force wait, unless the feed is trusted.
    force_wide_untrusted: bool = False
    #: Feeds (by name) trusted to address the whole force (the force's own news feed).
    #: Folders are the operator's own and always trusted.
    trusted: tuple[str, ...] = ()
    #: Minutes an advisory waits for a person before ``then`` applies.
    wait_minutes: float = Field(default=60.0, gt=0, le=30 * DAY_MINUTES)
    #: When nobody acted within ``wait_minutes``: ``keep`` it waiting, or ``release`` it
    #: (mailed and published as if a person had released it).
    then: Literal["keep", "release"] = "keep"
    #: Per source (by name), its own ``wait_minutes`` and ``then``, e.g.
    #: ``{force-news: {wait_minutes: 30, then: release}}``.
    per_source: tuple[tuple[str, ReviewTimeout], ...] = ()

    @field_validator("per_source", mode="before")
    @classmethod
    def _per_source(cls, value: Any) -> Any:
        if value is None or value == []:
            return ()
        if not isinstance(value, dict):
            raise ValueError(
                "must be a mapping of source name: {wait_minutes: N, then: keep|release}"
            )
        return tuple((str(name), rule) for name, rule in value.items())

    def timeout_for(self, source: str) -> tuple[float, str]:
        """(minutes, ``keep``|``release``) for advisories held from ``source``."""
        rule = dict(self.per_source).get(source, ReviewTimeout())
        return (
            rule.wait_minutes if rule.wait_minutes is not None else self.wait_minutes,
            rule.then or self.then,
        )


class Config(_Model):
    """Everything ``config.yaml`` says, validated; paths are absolute."""

    #: The database: sqlite:///path (relative to this file) or postgresql://user@host/dbname.
    database: str = "sqlite:///var/alerts.db"
    #: Local time zone of advisory dates and digest times (an IANA name).
    timezone: str = "Europe/London"
    #: A built-in gazetteer name (``kent``) or the path of a gazetteer YAML file.
    gazetteer: str = "kent"
    #: A folder whose ``email/`` and ``web/`` templates replace the packaged ones of the same
    #: name (the rest still come from the package); unset, the packaged templates serve.
    templates: Path | None = None
    #: Where advisories come from: folders of advisory files, upstream feeds.
    sources: tuple[SourceConfig, ...] = ()
    #: The public web site.
    site: SiteConfig = SiteConfig()
    #: The RSS and Atom files.
    feeds: FeedsConfig = FeedsConfig()
    #: Email digests.
    digests: DigestsConfig = DigestsConfig()
    #: Addresses in the mail.
    email: EmailConfig = EmailConfig()
    #: How mail leaves: a relay, or a Maildir folder.
    delivery: DeliveryConfig = DeliveryConfig()
    #: 'alerts serve' timetable.
    scheduler: SchedulerConfig = SchedulerConfig()
    #: The key that signs the links in mail.
    security: SecurityConfig = SecurityConfig()
    # Kept as pairs: the config is frozen and hashable.
    #: Extra names for areas, e.g. ``National: kent`` so that advisories declaring
    #: ``area: National`` are force-wide instead of outside coverage.
    area_aliases: tuple[tuple[str, str], ...] = ()
    #: How long personal data is kept ('alerts purge' applies it; the privacy notice states it).
    retention: RetentionConfig = RetentionConfig()
    #: 'alerts web' behind a reverse proxy.
    web: WebConfig = WebConfig()
    #: /metrics and /healthz.
    monitoring: MonitoringConfig = MonitoringConfig()
    #: The operator console at /admin.
    console: ConsoleConfig = ConsoleConfig()
    #: Advisories that wait for a person in the console before anyone is mailed.
    review: ReviewConfig = ReviewConfig()
    #: Directory the config file lives in; relative paths were resolved against it.
    root: Path = Path(".")

    @field_validator("area_aliases", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of name: area, e.g. {National: kent}")
        return tuple((str(name), str(area)) for name, area in value.items())

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        seen: dict[str, SourceConfig] = {}
        for source in sources:
            other = seen.setdefault(source.label, source)
            if other is source:
                continue
            if source.feed and other.feed and not (source.name and other.name):
                raise ValueError(f"two feeds are on {source.label}: give each a 'name:' of its own")
            raise ValueError(
                f"two sources are named {source.label!r}: give each a 'name:' of its own"
            )
        return sources

    @model_validator(mode="after")
    def _review_names_sources(self) -> Config:
        labels = {source.label for source in self.sources}
        review = self.review
        for key, names in (
            ("sources", review.sources),
            ("trusted", review.trusted),
            ("per_source", [name for name, _ in review.per_source]),
        ):
            unknown = [name for name in names if name not in labels]
            if unknown:
                known = ", ".join(sorted(labels)) or "none configured"
                raise ValueError(
                    f"review.{key} names {unknown[0]!r}, which is not a source's name"
                    f" (the sources are: {known})"
                )
        return self

    @model_validator(mode="after")
    def _return_path_aligned(self) -> Config:
        path = self.delivery.return_path
        if not path.enabled:
            return self
        from alerts.delivery.returns import organisational_domain

        sender = parseaddr(self.email.from_address)[1].rpartition("@")[2].lower()
        domain = (path.domain or sender).lower()
        if organisational_domain(domain) != organisational_domain(sender):
            raise ValueError(
                f"delivery.return_path.domain {domain!r} does not share email.from's organisational domain"
                f" ({organisational_domain(sender)}): SPF and DMARC would not align; use a domain under it"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/London"
            ) from None
        return value

    @field_validator("database")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError(f"must be a sqlite:/// or postgresql:// URL, got {value!r}")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def template_folders(self, kind: str) -> tuple[Path, ...]:
        """Where ``email`` or ``web`` templates are found: the operator's folder, then the package's."""
        return template_folders(self.templates, kind)

    @property
    def mail(self) -> MailSettings:
        """What the mail stages take (the sections every message is written with)."""
        return MailSettings(
            site=self.site,
            email=self.email,
            security=self.security,
            timezone=self.timezone,
            templates=self.templates,
        )


@dataclass(frozen=True)
class MailSettings:
    """What every message the service writes is made from (digests, confirmations,
    notices): the site it speaks for, its addresses, the key that signs its links, the
    local time zone and the operator's templates. These travel together into every mail
    stage, which take this rather than the whole :class:`Config` (``config.mail`` makes
    it); a test builds it in memory, each field defaulting as ``config.yaml`` does.
    Paths are used as given: ``config.mail`` has them resolved against the config's folder."""

    site: SiteConfig = field(default_factory=SiteConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    #: An IANA name (the config checked it).
    timezone: str = "Europe/London"
    #: The operator's template folder, if any (``templates:``).
    templates: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def template_folders(self, kind: str) -> tuple[Path, ...]:
        """Where ``email`` or ``web`` templates are found: the operator's folder, then the package's."""
        return template_folders(self.templates, kind)


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to read: the one given, else ``$ALERTS_CONFIG``, else ``./config.yaml``."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file. Raises :class:`ConfigError` naming the key at fault."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found",
            where=str(file),
            hint="pass --config PATH, set ALERTS_CONFIG, or copy config.yaml from the repository",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", where=str(file)) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        if isinstance(exc, DuplicateKey):
            raise ConfigError(str(exc.problem), where=where, hint="keep one of them") from None
        raise ConfigError(
            f"invalid YAML: {exc.problem}", where=where, hint="fix the YAML syntax"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys to values", where=str(file))
    return parse_config(data, root=file.resolve().parent, where=str(file), source=text)


def parse_config(
    data: dict[str, Any], *, root: Path, where: str = "config", source: str | None = None
) -> Config:
    """Validate a config mapping; paths in it are resolved against ``root``.
    ``source``, the YAML text it came from, lets an error name the line."""
    if "root" in data:
        raise ConfigError(
            "unknown key 'root'; check the spelling against the example config.yaml", where=where
        )
    try:
        config = Config.model_validate({**data, "root": root})
    except ValidationError as exc:
        message, loc = describe(exc, Config)
        line = line_of(source, loc) if source is not None else None
        raise ConfigError(message, where=f"{where}:{line}" if line else where) from None
    return resolve_paths(config, root)
