"""The handle every stage is given: one :class:`Store` per process (``open_store`` in
:mod:`alerts.store.database` makes it), with one repository per aggregate.

Each repository owns its tables and has one method per operation:

- ``store.advisories``: :class:`~alerts.store.advisories.Advisories`
- ``store.subscribers``: :class:`~alerts.store.subscribers.Subscribers`
- ``store.digests``: :class:`~alerts.store.digests.Digests`
- ``store.outbox``: :class:`~alerts.store.outbox.Outbox` (the work queue senders claim from)
- ``store.runs``: :class:`~alerts.store.runs.Runs`
- ``store.sources``: :class:`~alerts.store.sources.Sources`
- ``store.holds``: :class:`~alerts.store.holds.Holds` (surges held, and each source's lifecycle state)
- ``store.limits``: :class:`~alerts.store.limits.Limits`
- ``store.metrics``: :class:`~alerts.store.monitoring.Metrics`
- ``store.retention``: :class:`~alerts.store.retention.Retention`
- ``store.users``: :class:`~alerts.store.users.Users` (console accounts and sign-ins)
- ``store.audit``: :class:`~alerts.store.audit.Audit` (what the console did)
- ``store.relays``: :class:`~alerts.store.relay.RelayPauses` (a relay's pause, across processes)
- ``store.returns``: :class:`~alerts.store.bounces.Returns` (bounces and complaints that come later)
- ``store.fixtures``: :class:`~alerts.store.fixtures.Fixtures` (tests and benchmarks only)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from alerts.store.advisories import Advisories
from alerts.store.audit import Audit
from alerts.store.bounces import Returns
from alerts.store.database import (
    CONFIG_CAUSES,
    DatabaseConfigError,
    StoreError,
    create_db_engine,
    migrate,
)
from alerts.store.digests import Digests
from alerts.store.fixtures import Fixtures
from alerts.store.holds import Holds
from alerts.store.identity import DEFAULT_UPDATE_INTERVAL
from alerts.store.limits import Limits
from alerts.store.monitoring import Metrics
from alerts.store.outbox import Outbox
from alerts.store.relay import RelayPauses
from alerts.store.retention import Retention
from alerts.store.runs import Runs
from alerts.store.senders import Senders
from alerts.store.sources import Sources
from alerts.store.subscribers import Subscribers
from alerts.store.users import Users


class Store:
    """The database, one repository per aggregate. One per process; cheap to share
    (each call takes its own connection from the engine's pool)."""

    def __init__(self, engine: Engine, *, update_interval: timedelta = DEFAULT_UPDATE_INTERVAL):
        self.engine = engine
        self.advisories = Advisories(engine, update_interval=update_interval)
        self.subscribers = Subscribers(engine)
        self.digests = Digests(engine)
        self.outbox = Outbox(engine)
        self.senders = Senders(engine, self.outbox.held_engine)
        self.runs = Runs(engine)
        self.sources = Sources(engine)
        self.holds = Holds(engine)
        self.limits = Limits(engine)
        self.metrics = Metrics(engine, self.runs, self.sources)
        self.retention = Retention(engine, self.subscribers, self.limits)
        self.users = Users(engine)
        self.audit = Audit(engine)
        self.relays = RelayPauses(engine)
        self.returns = Returns(engine)
        #: Seeding and looking inside the tables: for tests and benchmarks only.
        self.fixtures = Fixtures(engine)

    def ping(self) -> None:
        """Raise (SQLAlchemyError) unless the database answers a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.outbox.close()
        self.engine.dispose()


def open_store(
    url: str, *, upgrade: bool = True, create: bool = True, **engine_kwargs: Any
) -> Store:
    """Connect to the database at ``url`` and (by default) migrate it to the newest schema.
    ``create=False`` (commands that only read): a missing SQLite file is an error naming
    it, and neither it nor its folder is made."""
    try:
        engine = create_db_engine(url, create=create, **engine_kwargs)
        if upgrade:
            migrate(engine)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise DatabaseConfigError(
            f"cannot create the folder {exc.filename or url}: {exc.strerror or exc}",
            where="database",
            hint="check the 'database:' URL in config.yaml",
        ) from None
    except SQLAlchemyError as exc:
        # The driver's own words (psycopg's name the host, port and database), not SQLAlchemy's wrapping.
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        shown = make_url(url).render_as_string(hide_password=True)
        # The server answered and refused (no such database or user, wrong password) or
        # the file cannot be: the URL is wrong, not the moment (exit status 2, not 1).
        refused = any(words in cause for words in CONFIG_CAUSES)
        raise (DatabaseConfigError if refused else StoreError)(
            f"cannot open {shown}: {cause}",
            where="database",
            hint="check the 'database:' URL in config.yaml"
            + ("" if refused else " and that the server is running"),
        ) from None
    return Store(engine)
