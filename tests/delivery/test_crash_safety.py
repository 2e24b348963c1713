"""Crash safety, for real: ``alerts send`` in a subprocess, killed with SIGKILL mid-run,
started again; the SMTP server (aiosmtpd, in this process) must have every message, and
at most one message per open connection (the one whose 250 had arrived) may have come
twice. On PostgreSQL the dead sender's rows come back at once, not after their lease. And
two ``alerts send`` processes sharing one PostgreSQL outbox never both send a message."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.store import open_store
from alerts.testing import Faults, SmtpSink, bare_message_id
from tests.support import NOW, REPO
from tests.support.seeding import seed_outbox
from tests.support.tables import outbox_rows

MESSAGES = 2000
CONNECTIONS = 4
pytestmark = pytest.mark.slow


def alerts_send(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "alerts", "--config", str(config), "send", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def relay_config(write_config: Callable[..., Path], database: str, sink: SmtpSink) -> Path:
    return write_config(
        database=database,
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        delivery={
            "backend": "smtp",
            "smtp": {
                "host": sink.host,
                "port": sink.port,
                "security": "none",
                "connections": CONNECTIONS,
                "timeout": 10,
            },
        },
    )


def outbox_state(database: str) -> dict[str, tuple[str, str | None]]:
    """Bare Message-ID -> (status, claimed_by)."""
    store = open_store(database)
    try:
        rows = outbox_rows(store.engine)
    finally:
        store.close()
    return {bare_message_id(r["message_id"]): (r["status"], r["claimed_by"]) for r in rows}


def fill(database: str) -> set[str]:
    store = open_store(database)
    try:
        return set(seed_outbox(store, count=MESSAGES, now=NOW, areas=("medway", "dover", "kent")))
    finally:
        store.close()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_sender_killed_mid_run_and_restarted_loses_nothing_and_repeats_at_most_one_message_per_connection(
    write_config: Callable[..., Path], request: pytest.FixtureRequest, database: str
) -> None:
    url: str = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    queued = fill(url)
    with SmtpSink(keep=False) as sink:
        config = relay_config(write_config, url, sink)
        first = alerts_send(config)
        try:
            assert sink.wait_for(300, timeout=60), "the sender did not get going"
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        assert first.returncode == -signal.SIGKILL
        at_kill = outbox_state(url)
        received_at_kill = collections.Counter(sink.message_ids())
        in_flight = {mid for mid, (status, _) in at_kill.items() if status == "sending"}
        assert sink.count < MESSAGES, "the sender finished before it was killed"
        # Every message the relay had accepted is marked sent but for at most one per connection.
        unmarked = {mid for mid in received_at_kill if at_kill[mid][0] != "sent"}
        assert len(unmarked) <= CONNECTIONS, unmarked

        # Started at once: the dead sender's rows are still under their 300 s lease, so
        # this run sends them only because it sees that their holder is gone.
        second = alerts_send(config)
        out, err = second.communicate(timeout=120)

    assert second.returncode == 0, err.decode()
    received = collections.Counter(sink.message_ids())
    assert set(received) == queued, f"{len(queued - set(received))} messages were lost"
    twice = {mid for mid, n in received.items() if n > 1}
    assert len(twice) <= CONNECTIONS, f"{len(twice)} messages came twice"
    assert all(n <= 2 for n in received.values())
    assert twice <= in_flight & unmarked, (
        "a message that was not in flight at the kill was sent twice"
    )
    assert json.loads(out)["sent"] == MESSAGES - len(set(received_at_kill)) + len(twice)
    after = outbox_state(url)
    assert collections.Counter(status for status, _ in after.values()) == {"sent": MESSAGES}
    assert all(claimed_by is None for _, claimed_by in after.values())


def test_two_senders_sharing_a_postgresql_outbox_never_send_a_message_twice(
    write_config: Callable[..., Path], postgres_url: str
) -> None:
    queued = fill(postgres_url)
    with SmtpSink(keep=False, faults=Faults(paused=True)) as sink:
        config = relay_config(write_config, postgres_url, sink)
        senders = [alerts_send(config), alerts_send(config)]
        # Nothing is accepted until both processes hold claims and have all 4 connections
        # open each, so the two really compete for the same rows.
        assert sink.wait_until(lambda: sink.connections >= 8, timeout=60)
        sink.faults.paused = False
        results = [sender.communicate(timeout=120) for sender in senders]

    for sender, (_out, err) in zip(senders, results, strict=True):
        assert sender.returncode == 0, err.decode()
    received = collections.Counter(sink.message_ids())
    assert set(received) == queued
    assert max(received.values()) == 1, "a message was sent twice"
    after = outbox_state(postgres_url)
    assert collections.Counter(status for status, _ in after.values()) == {"sent": MESSAGES}
    # Both processes did part of the work (the outbox was shared, not taken by one).
    counts = [json.loads(out)["sent"] for out, _err in results]
    assert sum(counts) == MESSAGES
    assert min(counts) > 0


def test_sigterm_finishes_the_messages_in_flight_and_leaves_the_rest_queued_for_the_next_run(
    write_config: Callable[..., Path], sqlite_url: str
) -> None:
    queued = fill(sqlite_url)
    with SmtpSink(keep=False) as sink:
        config = relay_config(write_config, sqlite_url, sink)
        first = alerts_send(config)
        assert sink.wait_for(200, timeout=60)
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err.decode()
        assert json.loads(out)["stopped"] is True
        at_stop = outbox_state(sqlite_url)
        assert "sending" not in {status for status, _ in at_stop.values()}
        sent_at_stop = {mid for mid, (status, _) in at_stop.items() if status == "sent"}
        assert sent_at_stop == set(sink.message_ids()), "a graceful stop leaves nothing unrecorded"

        second = alerts_send(config)
        _out, err = second.communicate(timeout=120)

    assert second.returncode == 0, err.decode()
    received = collections.Counter(sink.message_ids())
    assert set(received) == queued
    assert max(received.values()) == 1
