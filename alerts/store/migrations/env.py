"""Alembic environment: runs on the connection that ``alerts.store.database.migrate`` passes in,
or on ``-x url=...`` when the alembic command line is used directly."""

from alembic import context
from sqlalchemy import create_engine

from alerts.store.database import engine_url
from alerts.store.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///var/alerts.db")
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
