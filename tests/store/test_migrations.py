"""Schema changes go through Alembic: the migrations build exactly the tables that
alerts/store/schema.py declares, on SQLite and PostgreSQL, and running them again is harmless."""

from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from alerts.store import MIGRATIONS, engine_url, migrate, open_store
from alerts.store.schema import metadata
from tests.support import POSTGRES_ENV


def script_directory() -> ScriptDirectory:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_migrations_have_a_single_head() -> None:
    assert len(script_directory().get_heads()) == 1


def test_migrations_produce_exactly_the_declared_schema(db_url: str) -> None:
    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == script_directory().get_current_head()
    finally:
        store.close()


def test_opening_a_store_twice_is_harmless(db_url: str) -> None:
    from tests.store.test_store import make

    first = open_store(db_url)
    first.advisories.save(make(), {"medway"}, make().published_at)
    first.close()
    second = open_store(db_url)
    try:
        assert second.advisories.count() == 1
    finally:
        second.close()


def test_migrations_downgrade_to_nothing_and_back(db_url: str) -> None:
    store = open_store(db_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
        migrate(store.engine)
        assert set(metadata.tables) <= set(inspect(store.engine).get_table_names())
    finally:
        store.close()


@pytest.mark.postgres
def test_tests_leave_no_tables_in_the_public_schema() -> None:
    """Every PostgreSQL test works in a throwaway schema that its fixture drops."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    engine = create_engine(engine_url(base))
    try:
        with engine.connect() as conn:
            public = set(conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )).scalars())  # fmt: skip
    finally:
        engine.dispose()
    assert not public & {*metadata.tables, "alembic_version"}


def test_case_variants_of_one_mailbox_are_merged_keeping_the_opt_out(db_url: str) -> None:
    engine = create_engine(engine_url(db_url))
    try:
        migrate(engine, "0001")
        with engine.begin() as conn:
            insert = text(
                "INSERT INTO subscribers (id, email, frequency, status, forwardable, urgent, bounces, created_at)"
                " VALUES (:id, :email, 'daily', :status, false, true, 0, '2026-11-01 00:00:00')"
            )
            for row in [
                {"id": 1, "email": "Victim@example.org", "status": "active"},
                {"id": 2, "email": "victim@example.org", "status": "unsubscribed"},
                {"id": 3, "email": "VICTIM@example.org", "status": "pending"},
                {"id": 4, "email": "jo@example.org", "status": "active"},
                {"id": 5, "email": "Jo@example.org", "status": "pending"},
            ]:
                conn.execute(insert, row)
            conn.execute(
                text(
                    "INSERT INTO subscriber_areas (subscriber_id, area) VALUES (1, 'medway'), (4, 'dover'), (5, 'deal')"
                )
            )
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status FROM subscribers ORDER BY id")).all()
            areas = conn.execute(
                text("SELECT subscriber_id, area FROM subscriber_areas ORDER BY area")
            ).all()
        # The opt-out stays (nobody who left is mailed again); two subscriptions become
        # the active one, with the areas of both.
        assert [tuple(row) for row in rows] == [(2, "unsubscribed"), (4, "active")]
        assert [tuple(row) for row in areas] == [(4, "deal"), (4, "dover")]
        with pytest.raises(IntegrityError, match=r"(?i)unique"), engine.begin() as conn:
            conn.execute(insert, {"id": 6, "email": "JO@EXAMPLE.ORG", "status": "pending"})
    finally:
        engine.dispose()


def test_the_latency_histogram_starts_from_the_sent_messages_kept_at_the_upgrade(
    db_url: str,
) -> None:
    engine = create_engine(engine_url(db_url))
    try:
        migrate(engine, "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, frequency, status, forwardable, urgent, bounces, created_at)"
                    " VALUES (1, 'jo@example.org', 'daily', 'active', false, true, 0, '2026-11-01 00:00:00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO digests (id, key, kind, subject, html, text, areas, advisory_ids, created_at, meta)"
                    " VALUES (:id, :key, :kind, 's', 'h', 't', '[]', '[]', '2026-11-01 00:00:00', '{}')"
                ),
                [
                    {"id": 1, "key": "a", "kind": "urgent"},
                    {"id": 2, "key": "b", "kind": "urgent"},
                    {"id": 3, "key": "c", "kind": "daily"},
                    {"id": 4, "key": "d", "kind": "daily"},
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO outbox (subscriber_id, digest_id, status, attempts, next_attempt_at, message_id,"
                    " created_at, latency_ms) VALUES (1, :digest, :status, 1, '2026-11-01 00:00:00', :mid,"
                    " '2026-11-01 00:00:00', :latency)"
                ),
                [
                    {"digest": 1, "status": "sent", "mid": "m1", "latency": 800},
                    {"digest": 2, "status": "sent", "mid": "m2", "latency": 1000},
                    {
                        "digest": 3,
                        "status": "sent",
                        "mid": "m3",
                        "latency": 700_000_000,
                    },  # past the last bound
                    {"digest": 4, "status": "pending", "mid": "m4", "latency": None},
                ],
            )
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT kind, le_ms, count, sum_ms FROM latency_buckets ORDER BY kind")
            ).all()
        assert [tuple(row) for row in rows] == [
            ("daily", 2**62, 1, 700_000_000),
            ("urgent", 1000, 2, 1800),
        ]
    finally:
        engine.dispose()
