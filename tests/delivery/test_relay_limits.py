"""A relay that throttles, limits its sessions or trickles its replies, against a real
aiosmtpd server: its limits are the relay's, so no message spends an attempt on them,
none fails for them, and none is lost or sent twice."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result

from alerts.clock import ManualClock
from alerts.metrics import render_metrics
from alerts.testing import DROP, SmtpSink
from tests.support import NOW
from tests.support.delivery import queue, rows, send, statuses
from tests.support.sections import Stages

QUOTA = "451 4.7.1 Daily sending quota exceeded"


def test_a_relay_answering_every_mail_from_with_a_quota_reply_fails_nothing_and_delivers_each_once_after(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 20)
    sink.faults.inject("mail", QUOTA, times=14)

    reports = []
    for run in range(40):  # alerts serve would look again when the pause ends
        reports.append(send(smtp_mailer, now=NOW + timedelta(hours=run)))
        if statuses(smtp_mailer) == {"sent": 20}:
            break

    assert statuses(smtp_mailer) == {"sent": 20}
    assert sum(r.failed for r in reports) == 0
    assert any(QUOTA in e for r in reports for e in r.errors), "the relay's reply was not reported"
    received = collections.Counter(sink.message_ids())
    assert set(received) == set(ids) and max(received.values()) == 1
    assert {row["attempts"] for row in rows(smtp_mailer).values()} == {1}, (
        "the quota spent attempts"
    )


@pytest.mark.parametrize(
    "reply", ["452 4.5.3 Too many messages in this session", "421 4.7.0 Too many messages"]
)
def test_a_relay_taking_ten_messages_per_session_gets_new_sessions_and_charges_nobody(
    make_mailer: Callable[..., Stages], sink: SmtpSink, db_url: str, reply: str
) -> None:
    app = make_mailer(
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
    make_mailer: Callable[..., Stages], sink: SmtpSink, db_url: str
) -> None:
    app = make_mailer(
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


def test_a_relay_that_takes_the_body_and_never_answers_gets_at_most_three_copies_then_the_message_is_unknown(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    [only] = queue(smtp_mailer, 1)
    sink.faults.inject("body", DROP)

    reports = [send(smtp_mailer, now=NOW + timedelta(hours=run)) for run in range(12)]

    assert sink.bodies == 3, "sent again and again although the relay may have taken it"
    row = rows(smtp_mailer)[only]
    assert (row["status"], row["attempts"], row["unanswered"]) == ("unknown", 0, 3)
    assert "no final reply after the body, 3 times" in row["last_error"]
    assert sum(r.unknown for r in reports) == 1 and sum(r.failed for r in reports) == 0


def test_the_tries_after_an_unanswered_body_wait_longer_each_time(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    [only] = queue(smtp_mailer, 1)
    sink.faults.inject("body", DROP)

    send(smtp_mailer, now=NOW)
    first = rows(smtp_mailer)[only]["next_attempt_at"]
    send(smtp_mailer, now=first)
    second = rows(smtp_mailer)[only]["next_attempt_at"]

    assert first - NOW == timedelta(minutes=10)
    assert second - first == timedelta(minutes=20)


def test_the_relays_pause_is_remembered_across_runs_and_shown_by_status_and_metrics(
    run_cli: Callable[..., Result],
    write_config: Callable[..., Path],
    clock: ManualClock,
    smtp_mailer: Stages,
    sink: SmtpSink,
    db_url: str,
) -> None:
    queue(smtp_mailer, 3)
    sink.faults.inject("mail", QUOTA, times=1)

    first = send(smtp_mailer, now=NOW)
    before = rows(smtp_mailer)
    # Another run (another process would do the same) before the pause ends: nothing is tried.
    during = send(smtp_mailer, now=NOW + timedelta(seconds=30))
    untouched = rows(smtp_mailer) == before
    clock.set(NOW + timedelta(seconds=30))
    relay = {"host": sink.host, "port": sink.port, "security": "none"}
    config = write_config(database=db_url, delivery={"backend": "smtp", "smtp": relay})
    shown = run_cli("status", config=config)
    metrics = render_metrics(smtp_mailer.store, smtp_mailer.clock.now).decode()
    after = send(smtp_mailer, now=NOW + timedelta(hours=1))

    assert first.paused_until is not None and first.relay_reply and QUOTA in first.relay_reply
    assert (during.sent, during.deferred, during.paused_until) == (0, 0, first.paused_until)
    assert untouched, "a paused relay was tried again"
    assert "PAUSED until" in shown.output and QUOTA in shown.output
    assert (
        "alerts_relay_paused_until_timestamp_seconds{" in metrics
        and "Daily sending quota" in metrics
    )
    assert (after.sent, after.paused_until) == (3, None)
    assert {row["attempts"] for row in rows(smtp_mailer).values()} == {1}


def test_a_pause_ends_the_run_but_not_the_long_lived_sender_that_started_it(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, 3)
    sink.faults.inject("mail", QUOTA, times=1)
    serving = threading.Event()  # alerts serve's drainer passes its own stop event

    report = send(smtp_mailer, stop=serving)

    assert report.paused_until is not None
    assert not serving.is_set(), "the relay's pause stopped the sender for good"
