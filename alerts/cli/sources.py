"""``alerts sources list|release|drop``: each source's state in its lifecycle
(:mod:`alerts.ingest.lifecycle`), and the operator's word on a batch a surge held."""

from __future__ import annotations

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_existing_app
from alerts.config import SourceConfig
from alerts.errors import NotFound
from alerts.ingest.lifecycle import SourceEvent, SourceState
from alerts.ingest.surges import settle_surge
from alerts.locking import queue_turn
from alerts.types import Hold


@cli.group(short_help="Each source's state; release or drop a surge.")
def sources() -> None:
    """Each source's state (healthy, failing, surging); release or drop the batch a
    surging source holds."""


@sources.command("list")
@json_option
@with_existing_app
def list_sources(app: App, as_json: bool) -> None:
    """List the configured sources: healthy, failing or surging, and what each holds."""
    lives = app.store.holds.lifecycles([source.label for source in app.config.sources])
    rows = []
    for source in app.config.sources:
        life = lives.get(source.label)
        rows.append(
            {
                "source": source.label,
                "kind": "folder" if source.path is not None else "feed",
                "state": (life.state if life else SourceState.HEALTHY).value,
                "held": app.store.holds.count_held(source.label, Hold.SURGE),
                "surge_limit": source.surge_limit,
            }
        )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        held = f", {row['held']} advisories held" if row["held"] else ""
        click.echo(f"{row['source']}  {row['kind']}  {row['state']}{held}")


@sources.command("release")
@click.argument("name")
@with_existing_app
def release(app: App, name: str) -> None:
    """Release the batch a surging source holds: the next run mails and publishes it
    (each subscriber's hourly limit still holds)."""
    source = _source(app, name)
    with queue_turn(app.config.database).hold("sources release"):  # alerts.locking
        count = settle_surge(app.store, source, SourceEvent.RELEASE, now=app.now())
    click.echo(f"{count} advisories from {name} released." if count else f"{name} holds nothing.")


@sources.command("drop")
@click.argument("name")
@with_existing_app
def drop(app: App, name: str) -> None:
    """Drop the batch a surging source holds: kept, so never new again, but never
    mailed or published."""
    source = _source(app, name)
    with queue_turn(app.config.database).hold("sources drop"):  # alerts.locking
        count = settle_surge(app.store, source, SourceEvent.DROP, now=app.now())
    click.echo(f"{count} advisories from {name} dropped." if count else f"{name} holds nothing.")


def _source(app: App, name: str) -> SourceConfig:
    """The source configured under ``name`` (its ``name:``), or at that folder or feed URL."""
    for source in app.config.sources:
        if name in (source.label, str(source.path) if source.path else None, source.feed):
            return source
    labels = ", ".join(source.label for source in app.config.sources)
    raise NotFound(f"no source named {name!r}", where="sources", hint=f"the sources are: {labels}")
