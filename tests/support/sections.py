"""Config sections built in memory, for the tests of one stage.

A stage takes the sections it uses (``DeliveryConfig``, ``FeedsConfig`` and
``SiteConfig``, the :class:`~alerts.config.MailSettings` every mail is written with...),
so its tests build those and call it: no config file. YAML stays in the tests of config
loading, the CLI and whole-process journeys, which are what users type. Every path here
is absolute, as ``config.yaml``'s are once loaded (``resolve_paths``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.clock import Clock, default_clock
from alerts.config import (
    Config,
    DeliveryConfig,
    DigestsConfig,
    EmailConfig,
    FeedsConfig,
    MailSettings,
    SecurityConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
)
from alerts.ingest import IngestReport, ingest_sources, settle_sources
from alerts.store import Store, open_store
from tests.support import REPO

#: The From: the delivery and digest tests write with (their assertions name it).
FROM = "Kent Area Alerts <alerts@example.org>"


def security(tmp_path: Path, **settings: Any) -> SecurityConfig:
    """The signing key in ``tmp_path`` (made on first use), as the tests' config files have it."""
    return SecurityConfig(**{"secret_key_file": tmp_path / "secret.key", **settings})


def mail_settings(
    tmp_path: Path,
    *,
    site: SiteConfig | None = None,
    email: EmailConfig | None = None,
    **settings: Any,
) -> MailSettings:
    """What mail is written with: the repository's templates, a key in ``tmp_path`` and
    the From: the tests expect (``email.domain`` example.org)."""
    return MailSettings(
        site=site or SiteConfig(),
        email=email or EmailConfig.model_validate({"from": FROM, "domain": "example.org"}),
        security=settings.pop("security", None) or security(tmp_path),
        templates=settings.pop("templates", REPO / "templates"),
        **settings,
    )


def maildir_delivery(tmp_path: Path, **settings: Any) -> DeliveryConfig:
    """Delivery into the Maildir ``tmp_path/maildir``; ``settings`` as in ``delivery:``."""
    return DeliveryConfig(**{"backend": "maildir", "maildir": tmp_path / "maildir", **settings})


def smtp_delivery(tmp_path: Path, host: str, port: int, **settings: Any) -> DeliveryConfig:
    """Delivery to the relay at ``host:port`` (plain SMTP, short timeout, two connections
    unless ``smtp`` says otherwise); ``settings`` as in ``delivery:``."""
    smtp: dict[str, Any] = {
        "host": host,
        "port": port,
        "security": "none",
        "timeout": 5,
        "connections": 2,
    }
    smtp.update(settings.pop("smtp", {}))
    return maildir_delivery(tmp_path, backend="smtp", smtp=SmtpConfig(**smtp), **settings)


def feeds_config(tmp_path: Path, **settings: Any) -> FeedsConfig:
    """Feeds written into ``tmp_path/feeds``."""
    return FeedsConfig(**{"out": tmp_path / "feeds", **settings})


@dataclass
class Stages:
    """What a stage test calls the stages with, built in memory: an open store, the
    clock, the gazetteer and the sections (:func:`make_stages` makes one). :meth:`of`
    takes the same from an App on a config file, for the tests of commands and journeys
    that share helpers with the stage tests."""

    store: Store
    clock: Clock
    gazetteer: Gazetteer
    mail: MailSettings
    delivery: DeliveryConfig
    feeds: FeedsConfig
    digests: DigestsConfig = field(default_factory=DigestsConfig)

    @property
    def site(self) -> SiteConfig:
        return self.mail.site

    @classmethod
    def of(cls, app: App | Stages) -> Stages:
        if isinstance(app, Stages):
            return app
        config = app.config
        return cls(
            app.store,
            app.clock,
            app.gazetteer,
            config.mail,
            config.delivery,
            config.feeds,
            config.digests,
        )

    def now(self) -> datetime:
        return self.clock.now()

    def close(self) -> None:
        self.store.close()


def make_stages(
    tmp_path: Path,
    database: str,
    clock: Clock,
    gazetteer: Gazetteer,
    *,
    delivery: DeliveryConfig | None = None,
    digests: DigestsConfig | None = None,
    feeds: FeedsConfig | None = None,
    **mail: Any,
) -> Stages:
    """A store on ``database`` (created) and the sections to run the stages on it with:
    Maildir delivery and feeds into ``tmp_path``, the default digests, and
    :func:`mail_settings` (``mail``: its keywords, ``site=SiteConfig(...)``, ``email=...``,
    ``templates=...``).
    Close it (``stages.close()``) or let a fixture do it."""
    return Stages(
        open_store(database),
        clock,
        gazetteer,
        mail_settings(tmp_path, **mail),
        delivery or maildir_delivery(tmp_path),
        feeds or feeds_config(tmp_path),
        digests or DigestsConfig(),
    )


def ingest_from(
    sources: Sequence[SourceConfig],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    clock: Clock | None = None,
    **options: Any,
) -> IngestReport:
    """``ingest_sources`` over ``sources`` with the site, digests and time zone a config
    file has by default (``options``: ``only``, ``settling``...); as ``alerts ingest``
    does, files still being written are waited for first (``settle_sources``) unless a
    ``settling`` is given."""
    defaults = Config()
    clock = clock or default_clock()
    if "settling" not in options:
        options["settling"] = settle_sources(
            sources, store, gazetteer, clock=clock, zone=defaults.tz, only=options.get("only")
        )
    return ingest_sources(
        sources,
        store,
        gazetteer,
        now=now,
        clock=clock,
        zone=defaults.tz,
        site=defaults.site,
        digests=defaults.digests,
        **options,
    )
