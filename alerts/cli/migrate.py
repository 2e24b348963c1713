"""``alerts migrate``: bring the database's schema up to date, explicitly (every command
that writes does it too, under the same lock, so this is for upgrades done by hand or by
a deployment step before the services start)."""

from __future__ import annotations

import click

from alerts.app import App
from alerts.cli import cli, with_app
from alerts.store.database import create_db_engine, schema_revision


@cli.command()
@with_app
def migrate(app: App) -> None:
    """Bring the database schema up to date.

    Waits while another process does it (they take turns under a lock), then finds
    nothing to do.
    """
    engine = create_db_engine(app.config.database)
    try:
        before = schema_revision(engine)
    finally:
        engine.dispose()
    after = schema_revision(app.store.engine)  # opening the store migrates, under the lock
    if before == after:
        click.echo(f"The database schema is up to date (revision {after}).")
    else:
        click.echo(
            f"Migrated the database schema from revision {before or '(new database)'} to {after}."
        )
