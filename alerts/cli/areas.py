"""``alerts areas``: the area tree of the configured gazetteer."""

from __future__ import annotations

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_app
from alerts.types import AreaKind


@cli.command(short_help="List the areas one can subscribe to.")
@json_option
@click.option("--postcodes/--no-postcodes", default=True, show_default=True, help="List postcode districts.")
@with_app
def areas(app: App, as_json: bool, postcodes: bool) -> None:
    """List the areas one can subscribe to: force, districts, towns, postcode districts.

    --json prints a flat array of {slug, name, kind, parent, aliases}.
    """
    nodes = [n for n in app.gazetteer if postcodes or n.kind is not AreaKind.POSTCODE]
    if as_json:
        print_json([node.as_json() for node in nodes])
        return
    depth = {AreaKind.FORCE: 0, AreaKind.DISTRICT: 1, AreaKind.TOWN: 2, AreaKind.POSTCODE: 2}
    for node in nodes:
        if node.kind is AreaKind.POSTCODE:
            continue
        aliases = f"  (also: {', '.join(node.aliases)})" if node.aliases else ""
        click.echo(f"{'  ' * depth[node.kind]}{node.name} [{node.slug}]{aliases}")
        if node.kind is AreaKind.DISTRICT and postcodes:
            codes = [n.name for n in app.gazetteer if n.parent == node.slug and n.kind is AreaKind.POSTCODE]
            if codes:
                click.echo(f"{'  ' * 2}postcodes: {' '.join(codes)}")
