"""``alerts advisories list|show|retag``: what the store holds, who each advisory
reaches and why, and the operator's correction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from alerts.app import App
from alerts.cli import cli, json_option, parse_when, print_json, with_existing_app
from alerts.ingest.review import hold_by_editor, reason_words, release_advisory
from alerts.locking import queue_turn
from alerts.tagging import explain
from alerts.types import Advisory, Hold


@cli.group()
def advisories() -> None:
    """List and show stored advisories; correct whom one reaches."""


@advisories.command("list")
@click.option("--area", help="Only what a subscriber to this area gets (slug, name or postcode).")
@click.option("--since", help="Only those published since this date (DD/MM/YYYY or ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option(
    "--held",
    is_flag=True,
    help="Only those held back: a surge, a replacement, a review, an update waiting.",
)
@json_option
@with_existing_app
def list_advisories(
    app: App, area: str | None, since: str | None, limit: int | None, held: bool, as_json: bool
) -> None:
    """List advisories, newest first."""
    areas = app.gazetteer.matching_areas([app.gazetteer.resolve(area)]) if area else None
    published_since = parse_when(since, app, "--since")  # a usage error before the database
    items = app.store.advisories.find(
        areas=areas,
        since=published_since,
        limit=None if held else limit,
        include_outside=area is None or held,
    )
    if held:
        items = [item for item in items if held_back(item)][:limit]
    if as_json:
        print_json([advisory_json(app, item) for item in items])
        return
    if not items:
        click.echo(
            "No advisories."
            + ("" if app.store.advisories.count() else " Run 'alerts ingest' first.")
        )
        return
    for item in items:
        flags = "".join(
            f" [{flag}]"
            for flag, on in (
                ("withdrawn", item.status != "active"),
                ("urgent", item.priority == "urgent"),
                ("outside coverage", item.outside_coverage),
                ("retagged", item.area_override is not None),
                (f"held: {item.hold}", held_back(item) and item.hold is not None),
                ("held: update", item.update_held_since is not None),
            )
            if on
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
    item = app.store.advisories.get(ref)
    duplicates = app.store.advisories.duplicates_of(item.id)
    if as_json:
        others = [
            {
                **note,
                "first_seen_at": app.local(note["first_seen_at"]).isoformat(),
                "last_seen_at": app.local(note["last_seen_at"]).isoformat(),
            }
            for note in duplicates
        ]
        print_json(
            {
                **advisory_json(app, item),
                "body_html": item.body_html,
                "body_text": item.body_text,
                "duplicates": others,
            }
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
        (
            "status",
            item.status.value
            + (f", expires {app.local(item.expires_at):%d/%m/%Y}" if item.expires_at else ""),
        ),
        ("priority", item.priority.value),
        ("source", item.source),
        *(("held", line) for line in hold_lines(app, item)),
        *(
            (
                "also from",
                f'{note["origin"]} as {note["key"]} ("{note["title"]}", last {app.local(note["last_seen_at"]):%H:%M %d/%m/%Y})',
            )
            for note in duplicates
        ),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<12}{value}")
    for line in explain_areas(app, item):
        click.echo(line)
    click.echo()
    if item.summary and not " ".join(item.body_text.split()).startswith(
        " ".join(item.summary.split())
    ):
        # A summary taken from the first paragraph would be printed twice.
        click.echo(item.summary)
        click.echo()
    click.echo(item.body_text)


@advisories.command("release")
@click.argument("advisory_id", type=int)
@with_existing_app
def release(app: App, advisory_id: int) -> None:
    """Release an advisory waiting for review (review:, or held by an editor), or held
    as a replacement (a file that took an existing advisory's URL but says something
    else entirely): it goes out with the next run, as the console's release does. A
    replacement goes out as an advisory of its own, and the one whose URL it took stays
    as it is; to make it a new advisory the proper way instead, give the file its own url.

    A source's surge is released as a whole: 'alerts sources release NAME'."""
    item = app.store.advisories.get(advisory_id)
    # In the queue turn (alerts.locking): a change stamped before a running queueing's
    # instant but committed after its read would never be mailed.
    with queue_turn(app.config.database).hold("advisories release"):
        changed = release_advisory(app.store, item.id, now=app.now()).changed
    if changed:
        click.echo(f"Advisory {item.id} released: the next run mails and publishes it.")
        return
    if item.hold is Hold.SURGE:
        raise click.UsageError(
            f"advisory {item.id} is held with the surge of {item.hold_source}:"
            f" release the batch with 'alerts sources release {item.hold_source}'",
            ctx=click.get_current_context(),
        )
    click.echo(
        f"Advisory {item.id} is not held for review or as a replacement; nothing to release."
    )


@advisories.command("hold")
@click.argument("advisory_id", type=int)
@with_existing_app
def hold(app: App, advisory_id: int) -> None:
    """Hold an advisory for review: neither mailed nor published (it leaves the feeds and
    the archive at their next build) until 'alerts advisories release ID' or an editor
    releases it in the console. Those it was mailed to already are not mailed again."""
    item = app.store.advisories.get(advisory_id)
    with queue_turn(app.config.database).hold("advisories hold"):
        changed = hold_by_editor(
            app.store, app.config.sources, item.id, "the command line", now=app.now()
        ).changed
    if changed:
        click.echo(
            f"Advisory {item.id} held for review: 'alerts advisories release {item.id}' lets it go."
        )
        return
    click.echo(f"Advisory {item.id} is held already ({item.hold}); nothing to do.")


@advisories.command("retag")
@click.argument("ref")
@click.option(
    "--area",
    "areas",
    multiple=True,
    help="An area it reaches (repeat for several): slug, name or postcode.",
)
@click.option(
    "--outside",
    is_flag=True,
    help="It reaches nobody: outside coverage (stored, never mailed or published).",
)
@click.option("--auto", is_flag=True, help="Drop the override: the area rule decides again.")
@with_existing_app
def retag(app: App, ref: str, areas: tuple[str, ...], outside: bool, auto: bool) -> None:
    """Set whom an advisory reaches, overriding the area rule. The override is kept
    when the unchanged source is ingested again and when the source changes (then
    'show' gives the rule's new decision beside it); --auto hands it back to the rule.

    Subscribers it newly concerns get it with their next alert or digest; nobody gets
    it twice.

    Examples:
      alerts advisories retag 12 --area medway --area swale
      alerts advisories retag 12 --outside
      alerts advisories retag 12 --auto
    """
    if sum((bool(areas), outside, auto)) != 1:
        raise click.UsageError("give --area (once or more), --outside or --auto")
    item = app.store.advisories.get(ref)
    slugs = None if auto else [app.gazetteer.resolve(area) for area in areas]
    was = names(app, item.areas) or "nobody"
    with queue_turn(app.config.database).hold("advisories retag"):
        app.store.advisories.retag(item.id, slugs, app.now())
    now = app.store.advisories.get(item.id)
    reach = names(app, now.areas) or "nobody (outside coverage)"
    how = (
        "as the area rule decided"
        if auto
        else "until 'alerts advisories retag " + str(item.id) + " --auto'"
    )
    click.echo(f"Advisory {item.id} now reaches {reach} (was {was}), {how}.")


def names(app: App, areas: Iterable[str]) -> str:
    return ", ".join(app.gazetteer.node(a).name if a in app.gazetteer else a for a in areas)


def explain_areas(app: App, item: Advisory) -> list[str]:
    """Whom it reaches and why: the operator's override if any, then the rule's decision."""
    lines: list[str] = []
    if item.area_override is not None:
        at = (
            f" at {app.local(item.area_override_at):%H:%M %d/%m/%Y}"
            if item.area_override_at
            else ""
        )
        lines.append(
            f"Reaches:    {names(app, item.area_override) or 'nobody (outside coverage)'}: set by the operator{at}"
            f" ('alerts advisories retag {item.id} --auto' hands it back to the rule)"
        )
        if item.decision is not None:
            lines.append("The area rule, on the current text, says:")
            lines += ["  " + line for line in explain(item.decision, app.gazetteer)]
        return lines
    if item.decision is not None:
        return explain(item.decision, app.gazetteer)
    return lines


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
        "decision": item.decision.as_json() if item.decision else None,
        "outside_coverage": item.outside_coverage,
        "area_override": None if item.area_override is None else list(item.area_override),
        "area_override_at": when(item.area_override_at),
        "origin": item.origin,
        "hold": None if item.hold is None else item.hold.value,
        "hold_source": item.hold_source,
        "hold_at": when(item.hold_at),
        "hold_detail": item.hold_detail,
        "update_held_since": when(item.update_held_since),
    }


def held_back(item: Advisory) -> bool:
    """Kept from inboxes by a hold an operator may act on (a baseline is by design)."""
    return (
        item.hold is not None and item.hold is not Hold.BASELINE
    ) or item.update_held_since is not None


def hold_lines(app: App, item: Advisory) -> list[str]:
    """What holds the advisory back, and what to do about it."""
    lines = []
    if item.hold is Hold.SURGE:
        since = f" since {app.local(item.hold_at):%H:%M %d/%m/%Y}" if item.hold_at else ""
        lines.append(
            f"in the surge of {item.hold_source}{since}: 'alerts sources release {item.hold_source}' or 'drop'"
        )
    elif item.hold is Hold.DROPPED:
        lines.append(f"dropped with the surge of {item.hold_source}: never mailed or published")
    elif item.hold is Hold.REPLACEMENT and item.hold_detail:
        detail = item.hold_detail
        lines.append(
            f"replaces advisory {detail.get('replaces')} '{detail.get('title')}' ({str(detail.get('published_at'))[:10]})"
            f" by its url: give {item.hold_source} its own url, or 'alerts advisories release {item.id}'"
        )
    elif item.hold is Hold.REVIEW:
        since = f" since {app.local(item.hold_at):%H:%M %d/%m/%Y}" if item.hold_at else ""
        lines.append(
            f"waiting for review{since} ({'; '.join(reason_words(item))}):"
            f" the console, or 'alerts advisories release {item.id}'"
        )
    elif item.hold is Hold.BASELINE:
        lines.append(f"the first poll of {item.hold_source}: published, mailed to nobody")
    if item.update_held_since is not None:
        lines.append(
            f"a change since {app.local(item.update_held_since):%H:%M %d/%m/%Y} waits for its update interval"
            " (digests.update_interval_hours) before it is mailed"
        )
    return lines
