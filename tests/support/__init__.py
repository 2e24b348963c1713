"""What the tests share besides fixtures: the repository's paths, the instant the suite
treats as now, and helpers by subject (:mod:`.seeding` fills a store through its API,
:mod:`.tables` looks inside it, :mod:`.processes` runs ``alerts`` in a subprocess,
:mod:`.delivery`, :mod:`.digests`, :mod:`.advisory_files`, :mod:`.feed_rules` and
:mod:`.feed_server` serve the stages' tests). Fixtures live in the conftest.py of
``tests/`` (shared) and of each stage's folder."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from pathlib import Path

from alerts.app import App

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "advisories" / "2020-12-18-telephone-fraudster-poses-as-kent-police-officer.md"
POSTGRES_ENV = "ALERTS_TEST_POSTGRES_URL"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def utc_of(parsed: time.struct_time) -> datetime:
    """A date as feedparser reads it (a UTC struct_time) as an aware datetime."""
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def make_database(config: Path) -> None:
    """Create (and migrate) the database ``config`` names, as a first run would: the
    commands that only read (status, schedule, advisories list) never make one."""
    app = App(config)
    app.store  # noqa: B018 - opening it creates it
    app.close()
