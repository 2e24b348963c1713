"""Seconds, not minutes: a real ``alerts serve`` (and ``alerts web``) in subprocesses, a
loopback relay, and advisory files dropped into a watched folder. The tests assert that
mail arrives (with generous timeouts), never how fast: ``benchmarks/latency.py`` measures."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.app import App
from alerts.delivery.drain import OutboxDrainer
from alerts.delivery.workers import SendReport
from alerts.store.wakeup import channel_for, notify, socket_folder
from alerts.testing import SmtpSink
from tests.support import NOW
from tests.support.advisory_files import write_advisory
from tests.support.processes import AlertsProcess, free_port
from tests.support.seeding import seed_outbox, seed_subscribers
from tests.support.tables import outbox_rows

#: Generous: a loaded two-core machine running the suite in parallel.
ARRIVAL = 60.0


def relay_config(sink: SmtpSink, advisory_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "sources": [{"path": str(advisory_dir)}],  # the defaults: watched, 0.5 s settle
        "delivery": {
            "backend": "smtp",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", "connections": 2},
        },
        "email": {"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        **extra,
    }


def today() -> str:
    return datetime.now(UTC).astimezone().strftime("%H:%M %d/%m/%Y")


@pytest.mark.slow
def test_an_urgent_advisory_dropped_into_the_folder_reaches_every_subscriber_at_the_relay(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    with SmtpSink() as sink:
        config = write_config(**relay_config(sink, advisory_dir))
        app = App(config)
        addresses = seed_subscribers(app.store, count=30, now=datetime.now(UTC))
        app.close()
        serve = processes(config, "serve")
        serve.wait_for("watching ")
        serve.wait_for("startup: ")
        # Written elsewhere and renamed into place, as a careful publisher does.
        write_advisory(
            staging,
            "dangerous-dog",
            title="Dangerous dog loose in Chatham",
            url="https://www.kent.police.uk/news/dangerous-dog/",
            date=today(),
            area="Medway",
            priority="urgent",
            body="Residents of Chatham: keep children indoors.",
        ).rename(advisory_dir / "dangerous-dog.md")
        assert sink.wait_for(len(addresses), timeout=ARRIVAL), (
            f"{sink.count} of {len(addresses)} arrived"
        )
        received = sorted(r for message in sink.received for r in message.rcpt_tos)
        assert received == sorted(addresses)
        assert all("Dangerous dog" in str(m.message()["Subject"]) for m in sink.received)
        serve.wait_for("files: 1 new")


@pytest.mark.slow
def test_a_half_written_file_is_never_mailed_cut_short(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    with SmtpSink() as sink:
        # A long quiet period: the test writes the second half well within it.
        settings = relay_config(sink, advisory_dir)
        settings["sources"] = [{"path": str(advisory_dir), "settle_seconds": 3}]
        config = write_config(**settings)
        app = App(config)
        seed_subscribers(app.store, count=3, frequencies=("immediate",), now=datetime.now(UTC))
        app.close()
        serve = processes(config, "serve")
        serve.wait_for("watching ")
        serve.wait_for("startup: ")
        path = advisory_dir / "slow-copy.md"
        whole = write_advisory(
            staging,
            "slow-copy",
            title="Missing person: Chatham",
            url="https://www.kent.police.uk/news/missing/",
            date=today(),
            area="Medway",
            priority="urgent",
            body="Have you seen her? The last paragraph says where to call.",
        )
        data = whole.read_bytes()
        mark = serve.mark()
        with path.open("wb") as handle:
            handle.write(data[: len(data) // 2])  # the front matter is not even closed
            handle.flush()
            # The watcher saw it and left it alone.
            serve.wait_for("still being written", after=mark)
            handle.write(data[len(data) // 2 :])
        assert sink.wait_for(3, timeout=ARRIVAL)
        for message in sink.received:
            assert "where to call" in message.message().get_body(("plain",)).get_content()  # type: ignore[union-attr]
        problems = [
            json.loads(line)["message"] for line in serve.lines if '"level": "warning"' in line
        ]
        assert not [p for p in problems if p.startswith("rejected")], problems


@pytest.mark.slow
def test_a_sign_up_on_the_web_form_gets_its_confirmation_at_the_relay_with_serve_running(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    port = free_port()
    with SmtpSink() as sink:
        config = write_config(
            **relay_config(sink, advisory_dir, site={"base_url": f"http://127.0.0.1:{port}"})
        )
        serve = processes(config, "serve")
        serve.wait_for("startup: ")
        web = processes(config, "web", "--port", str(port))
        web.wait_for("serving ")
        answer = _post_until_up(
            f"http://127.0.0.1:{port}/subscribe",
            {
                "email": "new.resident@example.org",
                "areas": "Chatham",
                "frequency": "daily",
                "urgent": "yes",
            },
        )
        assert answer.status_code == 200 and "Check your email" in answer.text
        assert sink.wait_until(
            lambda: any("new.resident@example.org" in m.rcpt_tos for m in sink.received), ARRIVAL
        )
        (message,) = sink.received
        assert "Confirm your" in str(message.message()["Subject"])


def _post_until_up(url: str, form: dict[str, str]) -> httpx.Response:
    """uvicorn logs 'serving' just before it listens: try for a few seconds."""
    for _ in range(100):
        try:
            return httpx.post(url, data=form, timeout=30)
        except httpx.ConnectError:
            threading.Event().wait(0.1)
    raise AssertionError(f"nothing answered at {url}")


# -- the wake-up itself -------------------------------------------------------------


def test_a_wake_up_reaches_a_listener_in_another_process_beside_a_sqlite_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    listener = channel_for(url).listen()
    try:
        assert listener.wait(0.01) is False
        subprocess.run(
            [sys.executable, "-c", f"from alerts.store.wakeup import notify; notify({url!r})"],
            check=True,
        )
        assert listener.wait(30) is True
        assert listener.wait(0.01) is False  # one wake-up, consumed
    finally:
        listener.close()


def test_a_listener_that_died_is_cleared_away_by_the_next_wake_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    folder = socket_folder(tmp_path / "alerts.db")
    listener = channel_for(url).listen()
    listener.sock.close()  # type: ignore[attr-defined]  # as if its process had died
    notify(url)
    assert list(folder.iterdir()) == []


@pytest.mark.postgres
def test_a_wake_up_reaches_a_listener_through_postgresql_notify(postgres_url: str) -> None:
    listener = channel_for(postgres_url).listen()
    try:
        assert listener.wait(0.01) is False
        notify(postgres_url)
        assert listener.wait(30) is True
    finally:
        listener.close()


def test_the_drainer_sends_when_woken_and_stops_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    stop = threading.Event()
    drained = threading.Semaphore(0)

    def send(_stop: threading.Event) -> SendReport:
        drained.release()
        return SendReport()

    drainer = OutboxDrainer(
        send=send,
        channel=channel_for(url),
        next_due=lambda: None,  # nothing ever due: only a wake-up makes it look again
        clock=lambda: NOW,
        stop=stop,
        idle=3600,
    ).start()
    assert drained.acquire(timeout=30)  # the first look, at start
    notify(url)
    assert drained.acquire(timeout=30)
    stop.set()
    drainer.join(30)
    assert drainer.thread is not None and not drainer.thread.is_alive()


@pytest.mark.slow
def test_alerts_web_alone_sends_the_confirmation_and_leaves_digests_to_serve(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    port = free_port()
    with SmtpSink() as sink:
        config = write_config(
            **relay_config(sink, advisory_dir, site={"base_url": f"http://127.0.0.1:{port}"})
        )
        app = App(config)
        (digest,) = seed_outbox(app.store, count=1, now=datetime.now(UTC))
        web = processes(config, "web", "--port", str(port))
        web.wait_for("sending confirmation emails from this process")
        answer = _post_until_up(
            f"http://127.0.0.1:{port}/subscribe",
            {"email": "alone@example.org", "areas": "Dover", "frequency": "weekly"},
        )
        assert "It usually arrives within a minute" in answer.text
        assert sink.wait_until(lambda: sink.count >= 1, ARRIVAL)
        assert [m.rcpt_tos for m in sink.received] == [("alone@example.org",)]
        web.stop()
        [status] = [
            row["status"]
            for row in outbox_rows(app.store.engine)
            if row["message_id"] == f"<{digest}>"
        ]
        app.close()
        assert status == "pending"  # an alert is alerts serve's to send


# -- what operators see ---------------------------------------------------------------


def scrape(port: int) -> dict[str, Any]:
    """/metrics parsed by prometheus_client's own parser: family name -> samples."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


@pytest.mark.slow
def test_metrics_hold_the_outbox_sources_and_an_arrival_to_relay_histogram_covering_every_message_sent(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    port = free_port()
    with SmtpSink() as sink:
        config = write_config(
            **relay_config(sink, advisory_dir, site={"base_url": f"http://127.0.0.1:{port}"})
        )
        app = App(config)
        seed_subscribers(app.store, count=12, now=datetime.now(UTC))
        app.close()
        serve = processes(config, "serve")
        serve.wait_for("startup: ")
        web = processes(config, "web", "--port", str(port), "--no-send")
        web.wait_for("serving ")
        _post_until_up(
            f"http://127.0.0.1:{port}/subscribe",
            {"email": "watcher@example.org", "areas": "Medway", "frequency": "daily"},
        )
        write_advisory(
            staging,
            "flood",
            title="Flood warning for Rochester",
            url="https://www.kent.police.uk/news/flood/",
            date=today(),
            area="Medway",
            priority="urgent",
        ).rename(advisory_dir / "flood.md")
        assert sink.wait_for(13, timeout=ARRIVAL)

        def histogram_count() -> float:
            samples = scrape(port)["alerts_arrival_to_relay_seconds"]
            return sum(s.value for s in samples if s.name.endswith("_count"))

        deadline = time.monotonic() + ARRIVAL  # the senders record in batches, a moment later
        while histogram_count() < 13 and time.monotonic() < deadline:
            time.sleep(0.2)
        metrics = scrape(port)

    by_kind = {
        s.labels["kind"]: s.value
        for s in metrics["alerts_arrival_to_relay_seconds"]
        if s.name.endswith("_count")
    }
    assert by_kind == {"confirm": 1, "urgent": 12}  # an urgent advisory is an urgent alert to all
    sent_total = {s.labels["outcome"]: s.value for s in metrics["alerts_delivery_messages"]}["sent"]
    assert sum(by_kind.values()) == sent_total == sink.count == 13
    buckets = [s for s in metrics["alerts_arrival_to_relay_seconds"] if s.name.endswith("_bucket")]
    assert {s.labels["le"] for s in buckets} >= {"1.0", "10.0", "+Inf"}
    outbox_depth = {
        (s.labels["status"], s.labels["priority"]): s.value
        for s in metrics["alerts_outbox_messages"]
    }
    assert outbox_depth[("sent", "alert")] == 12 and outbox_depth[("sent", "transactional")] == 1
    assert outbox_depth[("pending", "digest")] == 0
    [oldest] = metrics["alerts_outbox_oldest_pending_age_seconds"]
    assert oldest.value == 0  # nothing waits
    [source] = metrics["alerts_source_polls"]
    assert source.labels == {"source": advisory_dir.name, "kind": "folder"} and source.value >= 2
    [success] = metrics["alerts_source_last_success_timestamp_seconds"]
    assert success.value > time.time() - 600
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["scheduler"] == "ok"


@pytest.mark.slow
def test_a_sender_process_beside_serve_shares_an_urgent_alert_and_each_subscriber_gets_it_once(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
    db_url: str,
) -> None:
    with SmtpSink() as sink:
        config = write_config(database=db_url, **relay_config(sink, advisory_dir))
        app = App(config)
        addresses = seed_subscribers(app.store, count=200, now=datetime.now(UTC))
        app.close()
        serve = processes(config, "serve")
        follower = processes(config, "send", "--follow")
        serve.wait_for("startup: ")
        follower.wait_for("sending until stopped")
        write_advisory(
            staging,
            "dangerous-dog",
            title="Dangerous dog loose in Chatham",
            url="https://www.kent.police.uk/news/dangerous-dog/",
            date=today(),
            area="Medway",
            priority="urgent",
            body="Residents of Chatham: keep children indoors.",
        ).rename(advisory_dir / "dangerous-dog.md")
        assert sink.wait_for(len(addresses), timeout=ARRIVAL), (
            f"{sink.count} of {len(addresses)} arrived"
        )
        serve.wait_for("files: 1 new")
        time.sleep(1)  # anything sent twice would have arrived by now
        received = sorted(r for message in sink.received for r in message.rcpt_tos)
        assert received == sorted(addresses)
        assert follower.stop() == 0
