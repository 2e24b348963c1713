"""The database connection: SQLAlchemy over SQLite (the default) or PostgreSQL (by URL).

:func:`~alerts.store.store.open_store` connects and brings the schema up to date
through the Alembic migrations shipped in ``alerts/store/migrations`` (:func:`migrate`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, text
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
            # Deleted rows are overwritten with zeros, not left in free pages: an erased
            # address must leave no byte behind (set here, whatever the build's default).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) with Alembic, under the
    migration lock: processes started together (``serve`` and ``web`` after an upgrade,
    several ``ingest`` on a new database) wait for the first to finish, then find nothing
    to do, instead of racing to create the same tables."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with migration_lock(engine), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A revision may rebuild a table (SQLite alters few columns in place): with
            # foreign keys on, dropping the old table deletes every child row (ON DELETE
            # CASCADE). The pragma does nothing inside a transaction, so it is switched
            # off before one begins, and the keys are checked before it commits.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if not sqlite:
                    # Held to the end of this transaction, which is the migration's: the
                    # next process reads the schema only once this one has committed it.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": _migration_key(connection)},
                    )
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
                if sqlite and (
                    broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                ):
                    raise StoreError(
                        f"the schema upgrade left {len(broken)} rows whose parent is missing"
                        f" (first: {tuple(broken[0])})",
                        where="database",
                        hint="restore the database from before the upgrade, or report this",
                    )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: a new database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# -- the migration lock -------------------------------------------------------------------

#: Longest wait for another process's migration (they take seconds; a holder that died
#: released its lock with it).
MIGRATION_WAIT = 600.0


def _migration_key(connection: Connection) -> int:
    """A 64-bit advisory-lock key for this schema: two installations sharing a server (in
    schemas of their own) do not wait for each other."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one() or "public"
    digest = hashlib.sha256(f"area-alerts migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an exclusive ``flock`` on ``<database>.migrate.lock`` beside the database,
    held while migrating (PostgreSQL's advisory lock is taken inside the transaction)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        # A folder this process may not write (a read-only web process): it cannot
        # migrate either, so there is nothing to keep out.
        yield
        return
    try:
        waited = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= MIGRATION_WAIT:
                    raise StoreError(
                        f"another process has been migrating the database for {MIGRATION_WAIT:.0f} s",
                        where=str(path),
                        hint="see what holds it (fuser " + str(path) + ") and try again",
                    ) from None
                # Blocking flock would not give up; the waits are short and few.
                time.sleep(0.05)
                waited += 0.05
        yield
    finally:
        os.close(fd)  # closing the file releases the lock
