"""The web tests' fixtures: an app on each store whose site lives at ``BASE``, and
Starlette's test client for it. A module that needs another app defines its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.web import create_app

BASE = "https://alerts.example.org"


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str) -> Iterator[App]:
    app = App(write_config(database=db_url, site={"base_url": BASE}))
    yield app
    app.close()


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url=BASE)
