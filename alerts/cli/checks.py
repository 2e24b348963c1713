"""Start-up checks: what a command will need is checked before it does anything, so a
bad setting fails at once, naming its key, instead of halfway through a run (or, for
``alerts serve``, in a job hours later while the service carries on doing nothing)."""

from __future__ import annotations

from alerts.app import App
from alerts.delivery import envelope_from, make_sender
from alerts.delivery.dkim import DkimSigner
from alerts.digest.render import DigestRenderer
from alerts.errors import ConfigError
from alerts.ingest.upstream import resolve_source_area
from alerts.tokens import load_secret_keys


def check_startup(
    app: App, *, email: bool = False, mail: bool = False, links: bool = False
) -> None:
    """Load the gazetteer, check the templates folder and the sources' areas; with
    ``email`` also the email templates; with ``mail`` also the delivery settings (the
    password variable, the CA file, the DKIM key, the From address) and, as with
    ``links``, the key that signs the personal links (messages get them when sent).
    The database is opened last but one (before any instance lock, whose file sits
    beside it)."""
    config = app.config
    gazetteer = app.gazetteer
    if config.templates is not None and not config.templates.is_dir():
        raise ConfigError(
            f"the templates folder {config.templates} does not exist",
            where="templates",
            hint="create it (its email/ and web/ templates replace the packaged ones) or remove 'templates:' from config.yaml",
        )
    for source in config.sources:
        resolve_source_area(source, gazetteer)
    if email:
        DigestRenderer(config.mail, config.digests, gazetteer)
    if mail:
        make_sender(config.delivery, app.clock)
        if config.delivery.dkim:
            DkimSigner.from_config(config.delivery.dkim, app.clock.timestamp)
        envelope_from(config.email)
    app.store  # noqa: B018 - the database last but one: opening it makes files and migrates
    if mail or links:
        load_secret_keys(config.security)  # made on first use (last: a start that fails makes none)
