"""What operators see, in-process: /healthz, /metrics from the database, source health,
and the latency percentiles of 'alerts status'."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from alerts.app import App
from alerts.store.sources import SourcePoll
from alerts.web import create_app
from tests.support import NOW
from tests.support.seeding import seed_outbox
from tests.support.tables import set_columns


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str) -> Iterator[App]:
    app = App(write_config(database=db_url))
    yield app
    app.close()


def metrics(app: App) -> dict[str, Any]:
    response = TestClient(create_app(app)).get("/metrics")
    assert response.status_code == 200
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def test_healthz_fails_until_the_scheduler_beats_and_again_when_it_stops(app: App) -> None:
    client = TestClient(create_app(app))
    never = client.get("/healthz")
    assert (
        never.status_code == 503 and never.json()["scheduler"] == "never ran: start 'alerts serve'"
    )
    app.store.runs.beat(app.now(), {"host": "alerts-1", "pid": 42})
    alive = client.get("/healthz")
    assert (
        alive.status_code == 200
        and alive.json()["ok"] is True
        and alive.json()["scheduler_pid"] == 42
    )
    app.store.runs.beat(app.now() - timedelta(minutes=3), {"host": "alerts-1", "pid": 42})
    stale = client.get("/healthz")
    assert stale.status_code == 503 and "no heartbeat for 180 s" in stale.json()["scheduler"]


def test_a_failing_feed_shows_its_failures_in_a_row_and_its_last_success(app: App) -> None:
    feed = "https://example.org/news.rss"
    app.store.sources.record_polls([SourcePoll(feed, "feed")], NOW)
    for minutes in (10, 20):
        app.store.sources.record_polls(
            [SourcePoll(feed, "feed", "HTTP 503")], NOW + timedelta(minutes=minutes)
        )
    [health] = app.store.sources.healths()
    assert (health.failures, health.failures_total, health.polls_total) == (2, 2, 3)
    assert health.last_ok_at == NOW and health.last_error == "HTTP 503"
    found = metrics(app)
    labels = {"source": feed, "kind": "feed"}
    assert [s.value for s in found["alerts_source_consecutive_failures"] if s.labels == labels] == [
        2
    ]
    assert [s.value for s in found["alerts_source_last_success_timestamp_seconds"]] == [
        NOW.timestamp()
    ]
    app.store.sources.record_polls([SourcePoll(feed, "feed")], NOW + timedelta(minutes=30))
    assert app.store.sources.healths()[0].failures == 0


def test_the_oldest_pending_message_and_the_outbox_by_priority_are_reported(app: App) -> None:
    seed_outbox(app.store, count=3, now=app.now() - timedelta(minutes=5))
    found = metrics(app)
    [age] = found["alerts_outbox_oldest_pending_age_seconds"]
    assert 295 <= age.value <= 400
    depth = {
        (s.labels["status"], s.labels["priority"]): s.value for s in found["alerts_outbox_messages"]
    }
    assert depth[("pending", "alert")] == 3 and depth[("pending", "transactional")] == 0


def test_status_shows_the_latency_percentiles_of_what_was_sent(
    app: App, run_cli: Callable[..., Any]
) -> None:
    seed_outbox(app.store, count=10, now=NOW)
    for index in range(10):  # 1 s .. 10 s
        set_columns(
            app.store.engine,
            "outbox",
            {"status": "sent", "sent_at": NOW, "latency_ms": (index + 1) * 1000},
            id=index + 1,
        )
    assert app.store.metrics.latency_percentiles() == (10, {50: 5.0, 90: 9.0, 99: 10.0})
    text = run_cli("status", config=Path(app.config_path or "")).stdout
    assert (
        "Arrival to relay, urgent and immediate alerts (10 sent): p50 5.0 s, p90 9.0 s, p99 10.0 s"
        in text
    )
    info = json.loads(run_cli("status", "--json", config=Path(app.config_path or "")).stdout)
    assert info["latency"]["urgent and immediate alerts"] == {
        "count": 10,
        "percentiles": {"50": 5.0, "90": 9.0, "99": 10.0},
    }
