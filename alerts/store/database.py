"""The database connection: SQLAlchemy over SQLite (the default) or PostgreSQL (by URL).

:func:`~alerts.store.store.open_store` connects and brings the schema up to date
through the Alembic migrations shipped in ``alerts/store/migrations`` (:func:`migrate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from alerts.errors import AlertsError, ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(AlertsError):
    """The database cannot be reached or is not in a usable state."""


class DatabaseConfigError(StoreError, ConfigError):
    """The database refused the URL itself: no such database or user, a wrong password."""


#: What drivers say when the URL, not the moment, is at fault.
CONFIG_CAUSES = (
    "does not exist",
    "password authentication failed",
    "no password supplied",
    "unable to open database file",
)


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3, the driver this project installs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class NoDatabase(DatabaseConfigError):
    """A command that only reads found no database file (it never makes one)."""


def create_db_engine(url: str, *, create: bool = True, **kwargs: Any) -> Engine:
    """An engine with the settings this project relies on (SQLite: WAL, foreign keys,
    a busy timeout so concurrent processes wait instead of failing). With ``create``
    False a missing SQLite file raises :class:`NoDatabase` instead of being made."""
    url = engine_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not create and not Path(database).is_file():
            raise NoDatabase(
                f"no database file {database}",
                where="database",
                hint="check the 'database:' URL in config.yaml; 'alerts run --once' or 'alerts ingest' creates it",
            )
        if database and database != ":memory:" and create:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) with Alembic."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
