"""Load and validate ``config.yaml`` into one frozen, typed object.

Validation happens once, at start-up: an unknown key, a wrong type or a missing value
is a :class:`ConfigError` that names the key, so no command fails halfway through.
Relative paths are resolved against the directory that holds the config file.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.errors import ConfigError

DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "ALERTS_CONFIG"
DAY_SECONDS = 24 * 3600
DAY_MINUTES = 24 * 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Model(BaseModel):
    # No inf or nan: ".inf" passes "greater than 0" and overflows later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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

    path: Path | None = None
    feed: str | None = None
    name: str | None = None
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
        return self.name or str(self.path or self.feed)


class SiteConfig(_Model):
    name: str = "Area Alerts"
    #: Public address of the web app (archive, subscribe, unsubscribe pages).
    base_url: str = "http://localhost:8000"
    #: Who publishes: shown in feeds and mail as the author.
    publisher: str = "Kent Police"
    language: str = "en-GB"

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")


class FeedsConfig(_Model):
    out: Path = Path("var/feeds")
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
    urgent_per_hour: int = Field(default=10, ge=1, le=1000)
    daily_at: time = time(7, 0)
    weekly_day: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    weekly_at: time = time(7, 0)


class EmailConfig(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_address: str = Field(default="Area Alerts <alerts@localhost>", alias="from")
    reply_to: str | None = None
    #: Domain for Message-IDs and the List-Id.
    domain: str = "localhost"
    #: Mailbox for mailto: one-click unsubscribe.
    unsubscribe_mailbox: str | None = None


class SmtpConfig(_Model):
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    #: Name of the environment variable that holds the password (never the password).
    password_env: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)
    connections: int = Field(default=4, ge=1, le=64)
    per_connection: int = Field(default=100, ge=1, le=100_000)
    #: Messages per second across all connections; 0 means no limit.
    rate: float = Field(default=0.0, ge=0, le=100_000)
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
    domain: str
    selector: str
    #: The RSA private key (PEM) whose public half is at ``<selector>._domainkey.<domain>``.
    key_file: Path
    #: A second signature with Ed25519 (RFC 8463), under a selector of its own.
    ed25519_selector: str | None = None
    ed25519_key_file: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> DkimConfig:
        if (self.ed25519_selector is None) != (self.ed25519_key_file is None):
            raise ValueError(
                "an Ed25519 signature needs both ed25519_selector and ed25519_key_file"
            )
        return self


class DeliveryConfig(_Model):
    backend: Literal["maildir", "smtp"] = "maildir"
    maildir: Path = Path("var/maildir")
    smtp: SmtpConfig | None = None
    dkim: DkimConfig | None = None
    #: Hard bounces after which an address is suppressed.
    max_bounces: int = Field(default=3, ge=1, le=100)
    #: First retry delay in seconds; doubles each attempt.
    retry_base: float = Field(default=60.0, gt=0, le=DAY_SECONDS)
    retry_max: float = Field(default=6 * 3600.0, gt=0, le=30 * DAY_SECONDS)
    #: Attempts after which a message is given up as failed.
    max_attempts: int = Field(default=12, ge=1, le=1000)
    #: How long a sender holds the rows it claimed. Rows a crashed sender held go out
    #: again after this (on SQLite at once when the sender ran on this machine); keep it
    #: well above the time one batch takes to send.
    lease_seconds: float = Field(default=300.0, ge=10, le=DAY_SECONDS)

    @model_validator(mode="after")
    def _smtp_present(self) -> DeliveryConfig:
        if self.backend == "smtp" and self.smtp is None:
            raise ValueError("backend is smtp but there is no 'smtp:' section with at least 'host'")
        return self


class SchedulerConfig(_Model):
    poll_minutes: float = Field(default=10.0, gt=0, le=7 * DAY_MINUTES)
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

    sent_days: int = Field(default=7, ge=0)
    pending_days: int = Field(default=7, ge=0)
    unsubscribed_days: int = Field(default=28, ge=0)


class Config(_Model):
    """Everything ``config.yaml`` says, validated; paths are absolute."""

    database: str = "sqlite:///var/alerts.db"
    timezone: str = "Europe/London"
    #: A built-in gazetteer name (``kent``) or the path of a gazetteer YAML file.
    gazetteer: str = "kent"
    templates: Path = Path("templates")
    sources: tuple[SourceConfig, ...] = ()
    site: SiteConfig = SiteConfig()
    feeds: FeedsConfig = FeedsConfig()
    digests: DigestsConfig = DigestsConfig()
    email: EmailConfig = EmailConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    security: SecurityConfig = SecurityConfig()
    #: Extra names for areas, e.g. ``National: kent`` so that advisories declaring
    #: ``area: National`` are force-wide instead of outside coverage. Kept as pairs: the
    #: config is frozen and hashable.
    area_aliases: tuple[tuple[str, str], ...] = ()
    retention: RetentionConfig = RetentionConfig()
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
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}" if mark else str(file)
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
        message, loc = _describe(exc)
        line = _line_of(source, loc) if source is not None else None
        raise ConfigError(message, where=f"{where}:{line}" if line else where) from None
    return _resolve_paths(config, root)


def _line_of(source: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the key at ``loc`` in the YAML text (or of its nearest parent)."""
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _describe(exc: ValidationError) -> tuple[str, tuple[Any, ...]]:
    # An unknown key explains the rest (a misspelt required key is also "missing").
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key = _dotted(first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown key '{key}'"
        hint = "check the spelling against the example config.yaml"
    elif kind == "missing":
        message = f"missing required key '{key}'"
        hint = None
    else:
        shown = first.get("input")
        message = f"'{key}': {first['msg']}"
        if not isinstance(shown, dict | list) and kind != "value_error":
            message += f" (got {shown!r})"
        hint = None
    message = message.replace("Value error, ", "").replace("a valid tuple", "a list")
    if len(errors) > 1:
        message += f" [and {len(errors) - 1} more problem(s)]"
    return (f"{message}; {hint}" if hint else message), tuple(first["loc"])


def _dotted(loc: tuple[Any, ...]) -> str:
    """``("sources", 0, "pth")`` -> ``sources[0].pth``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _resolve_paths(config: Config, root: Path) -> Config:
    def absolute(path: Path) -> Path:
        return path if path.is_absolute() else (root / path).resolve()

    database = config.database
    match = re.match(r"^(sqlite(?:\+\w+)?:///)(.+)$", database)
    if match and match.group(2) != ":memory:" and not match.group(2).startswith("/"):
        database = match.group(1) + str(absolute(Path(match.group(2))))
    sources = tuple(
        source.model_copy(
            update={
                "path": absolute(source.path),
                "symlink_targets": tuple(map(absolute, source.symlink_targets)),
            }
        )
        if source.path
        else source
        for source in config.sources
    )
    delivery = config.delivery.model_copy(update={"maildir": absolute(config.delivery.maildir)})
    if delivery.dkim:
        delivery = delivery.model_copy(
            update={
                "dkim": delivery.dkim.model_copy(
                    update={
                        "key_file": absolute(delivery.dkim.key_file),
                        "ed25519_key_file": delivery.dkim.ed25519_key_file
                        and absolute(delivery.dkim.ed25519_key_file),
                    }
                )
            }
        )
    if delivery.smtp and delivery.smtp.ca_file:
        smtp = delivery.smtp.model_copy(update={"ca_file": absolute(delivery.smtp.ca_file)})
        delivery = delivery.model_copy(update={"smtp": smtp})
    gazetteer = config.gazetteer
    if gazetteer.endswith((".yaml", ".yml")):
        gazetteer = str(absolute(Path(gazetteer)))
    return config.model_copy(
        update={
            "database": database,
            "sources": sources,
            "templates": absolute(config.templates),
            "feeds": config.feeds.model_copy(update={"out": absolute(config.feeds.out)}),
            "delivery": delivery,
            "gazetteer": gazetteer,
            "security": config.security.model_copy(
                update={"secret_key_file": absolute(config.security.secret_key_file)}
            ),
        }
    )
