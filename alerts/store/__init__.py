"""The store: the one owner of the database, a module per aggregate over the tables in
:mod:`alerts.store.schema` (and their migrations, in ``migrations/``). Stages are given
one :class:`Store` (``open_store``) and call its repositories (``store.advisories``,
``store.subscribers``, ``store.digests``, ``store.outbox``, ``store.runs``,
``store.sources``, ``store.limits``, ``store.metrics``, ``store.retention``); none
writes SQL of its own, and no module outside the store imports the tables.

- :mod:`~alerts.store.store`: :class:`Store`, the handle, and ``open_store``.
- :mod:`~alerts.store.database`: connecting, migrating, errors.
- :mod:`~alerts.store.advisories`: the advisories it holds.
- :mod:`~alerts.store.identity`: which stored advisory an item from a source is, and
  when its change is an update to mail.
- :mod:`~alerts.store.subscribers`: subscriber records and their status changes.
- :mod:`~alerts.store.digests`: digests, queueing them, and what each subscriber was sent.
- :mod:`~alerts.store.outbox`: the outbox as a work queue (claims, leases, outcomes).
- :mod:`~alerts.store.runs`: the record of runs, and ``alerts status``.
- :mod:`~alerts.store.sources`: what each source has already given (files, feeds), and
  each source's health.
- :mod:`~alerts.store.limits`: how often the forms may set off mail, per key.
- :mod:`~alerts.store.retention`: purge, erasure and export of personal data.
- :mod:`~alerts.store.monitoring`: what operators watch (outbox depth, latency, totals).
- :mod:`~alerts.store.wakeup`: waking senders in any process when mail is queued.
"""

from alerts.store.advisories import (
    IngestResult,
    Outcome,
    load_advisory_rows,
    row_to_advisory,
)
from alerts.store.database import (
    MIGRATIONS,
    DatabaseConfigError,
    StoreError,
    create_db_engine,
    engine_url,
    migrate,
)
from alerts.store.identity import material_hash
from alerts.store.ids import CHUNK, chunks
from alerts.store.store import Store, open_store

__all__ = [
    "CHUNK",
    "MIGRATIONS",
    "DatabaseConfigError",
    "IngestResult",
    "Outcome",
    "Store",
    "StoreError",
    "chunks",
    "create_db_engine",
    "engine_url",
    "load_advisory_rows",
    "material_hash",
    "migrate",
    "open_store",
    "row_to_advisory",
]
