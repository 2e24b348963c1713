"""``alerts areas``: the area tree of the configured gazetteer."""

from __future__ import annotations

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_app
from alerts.types import AreaKind


@cli.command(short_help="List the areas one can subscribe to.")
@json_option
@click.option(
    "--postcodes/--no-postcodes", default=True, show_default=True, help="List postcode districts."
)
@with_app
def areas(app: App, as_json: bool, postcodes: bool) -> None:
    """List the areas one can subscribe to: force, districts, towns, parishes and
    villages, postcode districts.

    --json prints a flat array of {slug, name, kind, parent, aliases}; a postcode
    district also has stands_for, the town it lies in (or its district).
    """
    nodes = [n for n in app.gazetteer if postcodes or n.kind is not AreaKind.POSTCODE]
    if as_json:
        print_json([node.as_json() for node in nodes])
        return
    depth = {AreaKind.FORCE: 0, AreaKind.DISTRICT: 1, AreaKind.TOWN: 2}
    for node in nodes:
        if node.kind in (AreaKind.POSTCODE, AreaKind.VILLAGE):
            continue
        aliases = f"  (also: {', '.join(node.aliases)})" if node.aliases else ""
        indent = "  " * (depth[node.kind] + 1)
        click.echo(f"{'  ' * depth[node.kind]}{node.name} [{node.slug}]{aliases}")
        villages = [
            n.slug for n in app.gazetteer if n.parent == node.slug and n.kind is AreaKind.VILLAGE
        ]
        if villages:
            click.echo(f"{indent}villages: {' '.join(villages)}")
        if node.kind is AreaKind.DISTRICT and postcodes:
            codes = [
                n.name
                for n in app.gazetteer
                if n.parent == node.slug and n.kind is AreaKind.POSTCODE
            ]
            if codes:
                click.echo(f"{indent}postcodes: {' '.join(codes)}")
