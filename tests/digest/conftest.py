"""The digest tests' fixtures: the stages on each store (SQLite, and PostgreSQL when
configured), with their sections built in memory; advisories and subscribers go in
through :mod:`tests.support.digests`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from tests.support.sections import Stages, make_stages


@pytest.fixture
def stages(
    tmp_path: Path, db_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> Iterator[Stages]:
    made = make_stages(tmp_path, db_url, clock, gazetteer)
    yield made
    made.close()
