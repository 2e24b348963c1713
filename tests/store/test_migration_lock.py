"""Upgrades: the migrations run once, under a lock (a PostgreSQL advisory lock; a file lock
beside SQLite), so processes started together on a new or older database wait for the
first instead of failing with "table already exists"; 'alerts migrate' runs them by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from sqlalchemy import text

from alerts.store import create_db_engine
from alerts.store.database import _migration_key, migration_lock, schema_revision

WriteConfig = Callable[..., Path]


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "alerts", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output


def test_three_processes_started_together_on_a_new_database_all_succeed(
    write_config: WriteConfig, db_url: str
) -> None:
    config = write_config(database=db_url)
    processes = [start(config, "ingest") for _ in range(3)]
    results = [finish(process) for process in processes]
    assert [code for code, _ in results] == [0, 0, 0], "\n".join(output for _, output in results)
    engine = create_db_engine(db_url)
    try:
        assert schema_revision(engine) is not None
        with engine.connect() as connection:  # the sample advisory, stored once
            assert connection.execute(text("SELECT count(*) FROM advisories")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_process_waits_for_a_migration_in_progress_then_finds_nothing_to_do(
    write_config: WriteConfig, db_url: str
) -> None:
    config = write_config(database=db_url)
    engine = create_db_engine(db_url)
    try:
        with migration_lock(engine), engine.connect() as holder:
            if engine.dialect.name == "postgresql":
                holder.execute(
                    text("SELECT pg_advisory_lock(:key)"), {"key": _migration_key(holder)}
                )
            waiting = start(config, "migrate")
            # It is started, and must still be waiting well after it would have finished.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and waiting.poll() is None:
                time.sleep(0.1)
            assert waiting.poll() is None, finish(waiting)[1]
            if engine.dialect.name == "postgresql":
                holder.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _migration_key(holder)}
                )
                holder.commit()
        code, output = finish(waiting)
        assert code == 0, output
        assert output.startswith("Migrated the database schema from revision (new database) to ")
    finally:
        engine.dispose()


def test_migrate_says_when_there_is_nothing_to_do(
    run_cli: Callable[..., Result], write_config: WriteConfig
) -> None:
    config = write_config()
    first = run_cli("migrate", config=config)
    assert first.exit_code == 0 and first.stdout.startswith(
        "Migrated the database schema from revision (new database)"
    )
    again = run_cli("migrate", config=config)
    assert again.exit_code == 0 and again.stdout.startswith(
        "The database schema is up to date (revision "
    )
