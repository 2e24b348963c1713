"""The ingest tests' fixtures: feeds served over loopback HTTP (the files and
folders each test needs are made in the test module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.feed_server import FeedServer, serve_feeds


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """The feeds in tests/fixtures/feeds, served on a free loopback port."""
    with serve_feeds() as running:
        yield running
