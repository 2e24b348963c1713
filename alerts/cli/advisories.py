"""``alerts advisories list|show``: what the store holds."""

from __future__ import annotations

from typing import Any

import click

from alerts.app import App
from alerts.cli import cli, json_option, parse_when, print_json, with_existing_app
from alerts.types import Advisory


@cli.group()
def advisories() -> None:
    """List and show stored advisories."""


@advisories.command("list")
@click.option("--area", help="Only what a subscriber to this area gets (slug, name or postcode).")
@click.option("--since", help="Only those published since this date (DD/MM/YYYY or ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@json_option
@with_existing_app
def list_advisories(app: App, area: str | None, since: str | None, limit: int | None, as_json: bool) -> None:
    """List advisories, newest first."""
    areas = app.gazetteer.matching_areas([app.gazetteer.resolve(area)]) if area else None
    published_since = parse_when(since, app, "--since")  # a usage error before the database
    items = app.store.advisories(areas=areas, since=published_since, limit=limit)
    if as_json:
        print_json([advisory_json(app, item) for item in items])
        return
    if not items:
        click.echo("No advisories." + ("" if app.store.count_advisories() else " Run 'alerts ingest' first."))
        return
    for item in items:
        flags = "".join(
            f" [{flag}]" for flag, on in (("withdrawn", item.status != "active"), ("urgent", item.priority == "urgent")) if on
        )
        click.echo(
            f"{item.id:>5}  {app.local(item.published_at):%d/%m/%Y %H:%M}  {','.join(item.areas):<20}  {item.title}{flags}"
        )


@advisories.command("show")
@click.argument("ref")
@json_option
@with_existing_app
def show_advisory(app: App, ref: str, as_json: bool) -> None:
    """Show one advisory by id or URL."""
    item = app.store.advisory(ref)
    duplicates = app.store.duplicates_of(item.id)
    if as_json:
        others = [
            {**note, "first_seen_at": app.local(note["first_seen_at"]).isoformat(),
             "last_seen_at": app.local(note["last_seen_at"]).isoformat()}
            for note in duplicates
        ]
        print_json(
            {**advisory_json(app, item), "body_html": item.body_html, "body_text": item.body_text, "duplicates": others}
        )
        return
    click.echo(item.title)
    click.echo("=" * min(len(item.title), 78))
    rows = [
        ("id", str(item.id)),
        ("url", item.url),
        ("published", f"{app.local(item.published_at):%H:%M %d/%m/%Y %Z}"),
        ("first seen", f"{app.local(item.first_seen_at):%H:%M %d/%m/%Y %Z}"),
        ("updated", f"{app.local(item.updated_at):%H:%M %d/%m/%Y %Z} (revision {item.revision})"),
        ("areas", ", ".join(app.gazetteer.node(a).name for a in item.areas if a in app.gazetteer)),
        ("status", item.status.value + (f", expires {app.local(item.expires_at):%d/%m/%Y}" if item.expires_at else "")),
        ("priority", item.priority.value),
        ("source", item.source),
        *(
            (
                "also from",
                f"{note['origin']} as {note['key']} (\"{note['title']}\", last {app.local(note['last_seen_at']):%H:%M %d/%m/%Y})",
            )
            for note in duplicates
        ),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<12}{value}")
    click.echo()
    if item.summary and not " ".join(item.body_text.split()).startswith(" ".join(item.summary.split())):
        # A summary taken from the first paragraph would be printed twice.
        click.echo(item.summary)
        click.echo()
    click.echo(item.body_text)


def advisory_json(app: App, item: Advisory) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return app.local(moment).isoformat() if moment else None

    return {
        "id": item.id,
        "key": item.key,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": when(item.published_at),
        "first_seen_at": when(item.first_seen_at),
        "updated_at": when(item.updated_at),
        "revision": item.revision,
        "areas": list(item.areas),
        "tags": list(item.tags),
        "status": item.status.value,
        "priority": item.priority.value,
        "expires_at": when(item.expires_at),
        "image_url": item.image_url,
        "source": item.source,
        "origin": item.origin,
    }
