"""The upgrade that makes subscriber ids never reused and gives each row a link key, run
on a populated database: nothing that hangs off a subscriber is lost (a rebuilt table
with foreign keys on would have cascaded its drop into them), every row gets its own
key, and an id once handed out is never handed out again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from alerts.areas import Gazetteer
from alerts.errors import NotFound
from alerts.store import open_store
from alerts.store.database import create_db_engine, migrate
from alerts.store.fixtures import Fixtures
from alerts.subscribers import make_subscription
from tests.support import NOW
from tests.support.sections import security


def counts(engine: Engine) -> dict[str, int]:
    return Fixtures(engine).row_counts("subscribers", "subscriber_areas", "outbox")


def test_the_upgrade_keeps_every_row_that_hangs_off_a_subscriber_and_ids_are_never_reused(
    db_url: str, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0008")  # the schema just before the rebuild
    Fixtures(engine).seed_outbox(count=6, now=NOW)
    before = counts(engine)
    assert before["subscribers"] == 6 and before["outbox"] == 6 and before["subscriber_areas"] == 6
    engine.dispose()

    store = open_store(db_url)
    try:
        assert counts(store.engine) == before
        rows = store.fixtures.table_rows("subscribers")
        keys = [row["link_key"] for row in rows]
        newest = max(rows, key=lambda row: row["id"])
        highest = newest["id"]
        assert all(keys) and len(set(keys)) == len(keys)

        # The newest subscriber is erased: the next one does not get its id.
        assert store.retention.erase(security(tmp_path), newest["email"], NOW) == 1
        with pytest.raises(NotFound):
            store.subscribers.get(highest)
        newcomer = store.subscribers.add(
            make_subscription(gazetteer, "new@example.org", ["medway"], frequency="daily"), now=NOW
        )
        assert newcomer.id > highest
        assert newcomer.link_key and newcomer.link_key not in keys
    finally:
        store.close()
