"""A relay's bad day is the relay's, not the recipients' or the messages': against a real
aiosmtpd server that answers what the test chooses (``alerts.testing.Faults.inject``).

An outage (connections refused, 421, sessions dropped) defers the messages it meets with
the relay's backoff and counts no attempt against them, so however long it lasts every
message goes once the relay is back. A relay that refuses every recipient with the same
policy reply ("Relay access denied", "authentication required") is misconfigured: the
run stops naming delivery.smtp, and nobody is bounced or suppressed for it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from datetime import timedelta

import pytest

from alerts.app import App
from alerts.testing import DROP, SmtpSink
from tests.conftest import NOW
from tests.delivery_fixtures import *  # noqa: F403
from tests.delivery_fixtures import DELIVERY, queue, rows, send, statuses

COUNT = 5
RUNS = DELIVERY["max_attempts"] + 2  # more runs than a message has attempts


# -- relay-level failures do not use up a message's attempts ---------------------------


OUTAGES = [
    ("connect", "421 4.3.2 Service not available, closing channel"),
    ("connect", DROP),
    ("ehlo", "451 4.3.0 try again later"),
    ("mail", "421 4.3.2 shutting down"),
    ("rcpt", DROP),
    ("body", "421 4.4.2 closing, timeout"),
]


@pytest.mark.parametrize(("stage", "reply"), OUTAGES, ids=[f"{s}-{r[:3] or 'drop'}" for s, r in OUTAGES])
def test_a_relay_down_for_more_runs_than_max_attempts_delivers_every_message_once_when_it_is_back(
    smtp_app: App, sink: SmtpSink, stage: str, reply: str
) -> None:
    ids = queue(smtp_app, COUNT)
    sink.faults.inject(stage, reply)

    outage = [send(smtp_app, now=NOW + timedelta(hours=run)) for run in range(RUNS)]
    during = rows(smtp_app)
    sink.faults.injected.clear()  # the relay is back
    after = send(smtp_app, now=NOW + timedelta(hours=RUNS))

    assert all(report.sent == report.failed == report.bounced == 0 for report in outage)
    assert all(report.errors and "relay unavailable" in report.errors[0] for report in outage)
    assert {row["status"] for row in during.values()} == {"pending"}
    assert {row["attempts"] for row in during.values()} == {0}, "the outage counted against the messages"
    assert (after.sent, after.failed, after.errors) == (COUNT, 0, [])
    received = collections.Counter(sink.message_ids())
    assert set(received) == set(ids) and max(received.values()) == 1
    assert {row["attempts"] for row in rows(smtp_app).values()} == {1}


def test_a_relay_deferral_names_the_relays_reply_and_waits_the_relays_backoff(smtp_app: App, sink: SmtpSink) -> None:
    ids = queue(smtp_app, COUNT)
    sink.faults.inject("connect", "421 4.3.2 maintenance")

    report = send(smtp_app, workers=1)

    assert (report.sent, report.deferred) == (0, 3)
    deferred = [rows(smtp_app)[i] for i in ids[:3]]
    assert all("421 4.3.2 maintenance" in row["last_error"] for row in deferred)
    # retry_base is 60 s, with jitter of a fifth either way, whatever the attempts.
    assert all(NOW + timedelta(seconds=48) <= row["next_attempt_at"] <= NOW + timedelta(seconds=72) for row in deferred)
    assert all(rows(smtp_app)[i]["next_attempt_at"] == NOW for i in ids[3:]), "untried ones stay due"


def test_a_relay_that_refuses_connections_for_long_fails_no_message(
    make_app: Callable[..., App], db_url: str
) -> None:
    with SmtpSink() as closed:
        port = closed.port  # nothing listens here once the sink stops
    app = make_app(database=db_url, smtp={"host": "127.0.0.1", "port": port, "connections": 1})
    queue(app, COUNT)

    reports = [send(app, now=NOW + timedelta(hours=run)) for run in range(RUNS)]

    assert all("Connection refused" in r.errors[0] for r in reports)
    assert statuses(app) == {"pending": COUNT}
    assert {row["attempts"] for row in rows(app).values()} == {0}


@pytest.mark.parametrize("reply", ["421 4.3.2 closing", DROP], ids=["421", "dropped"])
def test_a_message_the_relay_always_drops_while_others_go_uses_up_its_attempts_and_fails(
    smtp_app: App, sink: SmtpSink, reply: str
) -> None:
    ids = queue(smtp_app, COUNT)
    poison = rows(smtp_app)[ids[2]]["email"]
    sink.faults.inject("body", reply, recipient=poison)

    for run in range(RUNS):
        when = NOW + timedelta(days=run)
        if run:  # new mail for others each day, as digests keep coming
            ids += queue(smtp_app, 2, now=when, domain=f"day{run}.example.org")
        send(smtp_app, now=when, workers=1)

    row = rows(smtp_app)[ids[2]]
    assert (row["status"], row["attempts"]) == ("failed", DELIVERY["max_attempts"])
    assert row["last_error"].startswith("gave up after 3 attempts")
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])


def test_a_session_lost_with_no_later_message_to_tell_why_counts_no_attempt(smtp_app: App, sink: SmtpSink) -> None:
    [only] = queue(smtp_app, 1)
    sink.faults.inject("data", "421 4.3.2 closing")

    report = send(smtp_app)

    assert (report.sent, report.deferred) == (0, 1)
    row = rows(smtp_app)[only]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert "421 4.3.2 closing" in row["last_error"]
    assert report.errors and "relay unavailable" in report.errors[0]
