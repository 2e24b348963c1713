"""Fixtures every stage uses: real stores (SQLite in tmp_path, PostgreSQL on this
machine), a config written to disk, the gazetteer, the CLI run in-process, and business
time frozen at NOW for every test (the ``clock`` fixture moves it). Each stage's folder
has a conftest.py of its own; helpers that are not fixtures are in :mod:`tests.support`."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from alerts.areas import Gazetteer, load_gazetteer
from alerts.cli import cli
from alerts.clock import ManualClock, use_clock
from alerts.store import Store, engine_url, open_store
from tests.support import NOW, POSTGRES_ENV, REPO, SAMPLE


@pytest.fixture(autouse=True)
def clock() -> Iterator[ManualClock]:
    """Business time stands at NOW for the whole test, whatever the date on the machine:
    every App made in the test (the CLI's included) reads it. Move it with
    ``clock.advance(...)`` or ``clock.set(...)``; its monotonic time keeps running, so no
    deadline waits on a frozen clock. Processes the tests start run on the real clock."""
    manual = ManualClock(NOW)
    with use_clock(manual):
        yield manual


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    return load_gazetteer("kent")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections see a fresh schema, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(engine_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs twice: on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    store = open_store(sqlite_url)
    yield store
    store.close()


@pytest.fixture
def advisory_dir(tmp_path: Path) -> Path:
    """A folder holding a copy of the sample advisory."""
    folder = tmp_path / "advisories"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return folder


@pytest.fixture
def write_config(tmp_path: Path, sqlite_url: str, advisory_dir: Path) -> Callable[..., Path]:
    """Write a config.yaml into tmp_path: defaults for a test run, updated by ``overrides``."""

    def write(**overrides: Any) -> Path:
        data: dict[str, Any] = {
            "database": sqlite_url,
            # Test files are written whole before anything reads them: no settle wait.
            "sources": [{"path": str(advisory_dir), "settle_seconds": 0}],
            "templates": str(REPO / "templates"),
            "feeds": {"out": str(tmp_path / "feeds")},
            "delivery": {"backend": "maildir", "maildir": str(tmp_path / "maildir")},
            "security": {"secret_key_file": str(tmp_path / "secret.key")},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def config_path(write_config: Callable[..., Path]) -> Path:
    return write_config()


@pytest.fixture
def run_cli(config_path: Path) -> Callable[..., Result]:
    """Run ``alerts ARGS`` in-process against the test config; returns click's Result."""

    def run(*args: str, config: Path | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            ["--config", str(config or config_path), *args],
            input=input,
            catch_exceptions=False,
        )

    return run
