"""The digest tests' fixtures: an app on each store (SQLite, and PostgreSQL when
configured); advisories and subscribers go in through :mod:`tests.support.digests`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.app import App
from tests.support.digests import make_app


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str) -> App:
    return make_app(write_config, db_url)
