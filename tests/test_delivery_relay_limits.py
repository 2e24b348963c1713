"""A relay that throttles, limits its sessions or trickles its replies, against a real
aiosmtpd server: its limits are the relay's, so no message spends an attempt on them,
none fails for them, and none is lost or sent twice."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from alerts.app import App
from alerts.testing import SmtpSink
from tests.conftest import NOW
from tests.delivery_fixtures import *  # noqa: F403
from tests.delivery_fixtures import queue, rows, send, statuses

QUOTA = "451 4.7.1 Daily sending quota exceeded"


def test_a_relay_answering_every_mail_from_with_a_quota_reply_fails_nothing_and_delivers_each_once_after(
    smtp_app: App, sink: SmtpSink
) -> None:
    ids = queue(smtp_app, 20)
    sink.faults.inject("mail", QUOTA, times=14)

    reports = []
    for run in range(40):  # alerts serve would look again when the pause ends
        reports.append(send(smtp_app, now=NOW + timedelta(hours=run)))
        if statuses(smtp_app) == {"sent": 20}:
            break

    assert statuses(smtp_app) == {"sent": 20}
    assert sum(r.failed for r in reports) == 0
    assert any(QUOTA in e for r in reports for e in r.errors), "the relay's reply was not reported"
    received = collections.Counter(sink.message_ids())
    assert set(received) == set(ids) and max(received.values()) == 1
    assert {row["attempts"] for row in rows(smtp_app).values()} == {1}, "the quota spent attempts"


@pytest.mark.parametrize(
    "reply", ["452 4.5.3 Too many messages in this session", "421 4.7.0 Too many messages"]
)
def test_a_relay_taking_ten_messages_per_session_gets_new_sessions_and_charges_nobody(
    make_app: Callable[..., App], sink: SmtpSink, db_url: str, reply: str
) -> None:
    app = make_app(
        database=db_url, smtp={"host": sink.host, "port": sink.port, "per_connection": 100}
    )
    ids = queue(app, 45)
    sink.faults.per_session = 10
    sink.faults.session_full = reply

    report = send(app, workers=1)

    assert (report.sent, report.deferred, report.failed, report.errors) == (45, 0, 0, [])
    assert sorted(sink.message_ids()) == sorted(ids)
    assert {row["attempts"] for row in rows(app).values()} == {1}
    # Told once, then a new session after every ten without being told again.
    assert sink.connections == 5


def test_a_relay_trickling_its_replies_is_cut_off_at_the_timeout_not_per_byte(
    make_app: Callable[..., App], sink: SmtpSink, db_url: str
) -> None:
    app = make_app(
        database=db_url, smtp={"host": sink.host, "port": sink.port, "timeout": 1, "connections": 1}
    )
    ids = queue(app, 2)
    sink.faults.trickle = 0.5  # a byte each half second: "250 OK" alone takes 4 s

    started = time.monotonic()
    report = send(app)
    took = time.monotonic() - started

    assert report.sent == 0
    # Each message waits at most one timeout for its first reply (MAIL FROM), not the
    # several seconds a per-read timeout would let the trickle run.
    assert took < 2 * 1 + 2, f"the trickle held the sender {took:.1f} s"
    errors = [rows(app)[i]["last_error"] for i in ids]
    assert all("within 1 s" in e or "timed out" in e for e in errors), errors
    assert {row["attempts"] for row in rows(app).values()} == {0}
