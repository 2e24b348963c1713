"""One scheduler per database: a second says who holds the lock; it may take over when
the holder dies. Real processes hold the locks (SQLite: flock; PostgreSQL: advisory)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from alerts.locking import AlreadyRunning, FileLock, NoLock, PostgresLock, instance_lock
from alerts.store import engine_url, open_store
from tests.support import POSTGRES_ENV, REPO

HOLD = """
import sys
from alerts.locking import instance_lock
lock = instance_lock(sys.argv[1], "serve")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until killed
"""


@pytest.fixture
def holder(db_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the instance lock of ``db_url``."""
    open_store(db_url).close()  # the database exists, as it would for 'alerts serve'
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_instance_is_refused_and_told_who_holds_the_lock(
    db_url: str, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(AlreadyRunning) as caught:
        instance_lock(db_url).acquire()
    message = str(caught.value)
    assert "another Area Alerts scheduler is running against this database" in message
    assert "alerts serve pid" in message
    if db_url.startswith("sqlite"):
        assert f"pid {holder.pid}" in message
    assert "--standby" in message


def test_the_lock_is_free_again_when_its_holder_dies(
    db_url: str, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(AlreadyRunning):
        instance_lock(db_url).acquire()
    holder.kill()
    holder.wait()
    lock = instance_lock(db_url)
    # PostgreSQL notices the closed connection a moment later: wait up to 10 s for it.
    lock.acquire(wait=10)
    try:
        assert lock.check()
    finally:
        lock.release()


def test_released_lock_can_be_taken_again_in_process(db_url: str) -> None:
    open_store(db_url).close()
    with instance_lock(db_url), pytest.raises(AlreadyRunning):
        instance_lock(db_url).acquire()
    with instance_lock(db_url) as again:
        assert again.check()


def test_sqlite_lock_file_sits_next_to_the_database(tmp_path: Path) -> None:
    lock = instance_lock(f"sqlite:///{tmp_path}/var/alerts.db")
    assert isinstance(lock, FileLock) and lock.path == tmp_path / "var" / "alerts.db.lock"
    with lock:
        assert f"pid {os.getpid()}" in lock.path.read_text()


def test_kinds_of_lock() -> None:
    assert isinstance(instance_lock("sqlite:///:memory:"), NoLock)
    assert isinstance(instance_lock("postgresql://u@127.0.0.1:1/x"), PostgresLock)


def test_different_postgres_schemas_do_not_block_each_other(postgres_url: str) -> None:
    base = os.environ[POSTGRES_ENV]
    other = f"t_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in base else "?"
    other_url = f"{base}{separator}options=-csearch_path%3D{other}"
    admin = create_engine(engine_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{other}"'))
    try:
        with PostgresLock(postgres_url) as first, PostgresLock(other_url) as second:
            assert first.check() and second.check()  # both held at once
            assert first.key != second.key
            for url in (postgres_url, other_url):  # and each still keeps out its own schema
                with pytest.raises(AlreadyRunning):
                    PostgresLock(url).acquire()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()


def test_a_dropped_postgres_lock_connection_takes_the_lock_again(postgres_url: str) -> None:
    lock = instance_lock(postgres_url)
    assert isinstance(lock, PostgresLock)
    lock.acquire()
    admin = create_engine(
        engine_url(os.environ["ALERTS_TEST_POSTGRES_URL"]), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                ),
                {"n": lock.name},
            )
        assert lock.check()  # reconnected, and nobody else had it: held again
        assert lock.check()
    finally:
        lock.release()
        admin.dispose()


def test_a_lost_lock_that_another_took_is_reported_lost(postgres_url: str) -> None:

    lock = instance_lock(postgres_url)
    assert isinstance(lock, PostgresLock)
    lock.acquire()
    admin = create_engine(
        engine_url(os.environ["ALERTS_TEST_POSTGRES_URL"]), isolation_level="AUTOCOMMIT"
    )
    other = instance_lock(postgres_url)
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                ),
                {"n": lock.name},
            )
        other.acquire(wait=10)  # a standby took over while the connection was down
        assert not lock.check()
    finally:
        other.release()
        lock.release()
        admin.dispose()
