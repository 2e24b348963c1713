"""The outbox's promise, against a real SMTP server on loopback (aiosmtpd) and real
SQLite and PostgreSQL stores: sent only once accepted, retried on temporary failures,
bounced on 5xx, suppressed after repeated bounces, others unaffected."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from alerts.delivery.queue import RetryPolicy
from alerts.testing import SmtpSink
from tests.support import NOW
from tests.support.delivery import queue, queue_more, rows, send, statuses
from tests.support.sections import Stages
from tests.support.tables import set_columns


def test_every_queued_message_is_sent_once_and_marked_sent(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 120, areas=("medway", "dover", "kent"))

    report = send(smtp_mailer)

    assert report.sent == 120
    assert sorted(sink.message_ids()) == sorted(ids)
    for row in rows(smtp_mailer).values():
        assert (row["status"], row["attempts"], row["sent_at"], row["claimed_by"]) == (
            "sent",
            1,
            NOW,
            None,
        )


def test_the_envelope_and_headers_name_the_subscriber(smtp_mailer: Stages, sink: SmtpSink) -> None:
    [message_id] = queue(smtp_mailer, 1)

    send(smtp_mailer)

    [got] = sink.received
    assert got.mail_from == "alerts@example.org"
    assert got.rcpt_tos == ("reader0@example.org",)
    message = got.message()
    assert message["To"] == "reader0@example.org"
    assert message["Message-ID"] == f"<{message_id}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_451_after_data_leaves_the_message_pending_with_backoff_and_the_rest_go(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 10)
    sink.faults.defer.add("reader3@example.org")

    report = send(smtp_mailer)

    assert (report.sent, report.deferred) == (9, 1)
    assert sorted(sink.message_ids()) == sorted(ids[:3] + ids[4:])
    row = rows(smtp_mailer)[ids[3]]
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert "451" in row["last_error"]
    # retry_base is 60 s, with up to 20% jitter either way
    assert NOW + timedelta(seconds=48) <= row["next_attempt_at"] <= NOW + timedelta(seconds=72)


def test_a_deferred_message_goes_on_a_later_run_with_the_same_message_id(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 3)
    sink.faults.defer.add("reader1@example.org")
    send(smtp_mailer)

    assert send(smtp_mailer, now=NOW + timedelta(seconds=30)).sent == 0  # not due yet
    sink.faults.defer.clear()
    report = send(smtp_mailer, now=NOW + timedelta(minutes=2))

    assert report.sent == 1
    assert sorted(sink.message_ids()) == sorted(ids)
    row = rows(smtp_mailer)[ids[1]]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)


def test_a_message_deferred_max_attempts_times_fails(smtp_mailer: Stages, sink: SmtpSink) -> None:
    [message_id] = queue(smtp_mailer, 1)
    sink.faults.defer.add("reader0@example.org")

    reports = [send(smtp_mailer, now=NOW + timedelta(days=day)) for day in range(4)]

    assert [r.deferred for r in reports] == [1, 1, 0, 0]
    assert [r.failed for r in reports] == [0, 0, 1, 0]
    row = rows(smtp_mailer)[message_id]
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert "gave up after 3 attempts" in row["last_error"]


def test_backoff_doubles_from_retry_base_up_to_retry_max_with_jitter() -> None:
    policy = RetryPolicy(base=60, maximum=3600, max_attempts=12)
    rng = random.Random(5)

    delays = [policy.delay(attempt, rng).total_seconds() for attempt in range(1, 10)]

    for attempt, delay in enumerate(delays, start=1):
        nominal = min(3600, 60 * 2 ** (attempt - 1))
        assert 0.8 * nominal <= delay <= min(3600, 1.2 * nominal)
    assert delays[-1] <= 3600


def test_550_for_a_recipient_is_a_bounce_and_the_others_go_on(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 5)
    sink.faults.reject.add("reader2@example.org")

    report = send(smtp_mailer)

    assert (report.sent, report.bounced) == (4, 1)
    row = rows(smtp_mailer)[ids[2]]
    assert row["status"] == "bounced"
    assert "550" in row["last_error"]
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])


def test_three_hard_bounces_suppress_the_address_and_its_queued_messages(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, 1)
    [row] = rows(smtp_mailer).values()
    subscriber_id = row["subscriber_id"]
    queue_more(smtp_mailer, subscriber_id, [NOW + timedelta(hours=h) for h in range(1, 5)])
    sink.faults.reject.add("reader0@example.org")

    reports = [send(smtp_mailer, now=NOW + timedelta(hours=h)) for h in range(3)]

    assert [r.bounced for r in reports] == [1, 1, 1]
    assert [r.suppressed_addresses for r in reports] == [0, 0, 1]
    assert reports[2].suppressed == 2  # the two still queued for later
    assert statuses(smtp_mailer) == {"bounced": 3, "suppressed": 2}
    subscriber = smtp_mailer.store.subscribers.get(subscriber_id)
    assert (subscriber.status, subscriber.bounces) == ("suppressed", 3)
    assert sink.message_ids() == []
    assert send(smtp_mailer, now=NOW + timedelta(days=1)).sent == 0


def test_messages_to_someone_who_unsubscribed_meanwhile_are_suppressed_not_sent(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 3)
    set_columns(
        smtp_mailer.store.engine,
        "subscribers",
        {"status": "unsubscribed"},
        email="reader1@example.org",
    )

    report = send(smtp_mailer)

    assert (report.sent, report.suppressed) == (2, 1)
    assert rows(smtp_mailer)[ids[1]]["status"] == "suppressed"
    assert ids[1] not in sink.message_ids()


def test_a_connection_dropped_mid_data_leaves_the_message_pending_and_the_rest_go(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 6)
    sink.faults.drop.add("reader2@example.org")

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred) == (5, 1)
    row = rows(smtp_mailer)[ids[2]]
    assert row["status"] == "pending"
    assert "no reply after the body" in row["last_error"]
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])


def test_554_after_data_fails_the_message_without_counting_a_bounce(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 2)
    sink.faults.refuse_message.add("reader0@example.org")

    report = send(smtp_mailer)

    assert (report.sent, report.failed, report.bounced) == (1, 1, 0)
    assert rows(smtp_mailer)[ids[0]]["status"] == "failed"
    assert [s.bounces for s in smtp_mailer.store.subscribers.iterate(status=None)] == [0, 0]


def test_421_on_connect_defers_that_message_and_a_new_connection_delivers_the_rest(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 5)
    sink.faults.refuse_connections = 1

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred) == (4, 1)
    assert sorted(sink.message_ids()) == sorted(ids[1:])
    assert "421" in rows(smtp_mailer)[ids[0]]["last_error"]


def test_a_relay_that_refuses_connections_stops_the_run_and_nothing_is_lost(
    make_mailer, db_url: str
) -> None:
    with SmtpSink() as closed:
        port = closed.port  # a port nothing listens on once the sink stops
    app = make_mailer(database=db_url, smtp={"host": "127.0.0.1", "port": port, "connections": 1})
    queue(app, 10)

    report = send(app)

    assert report.sent == 0
    assert report.deferred == 3  # the worker gave up after three refused connections
    assert report.errors and "relay unavailable" in report.errors[0]
    assert statuses(app) == {"pending": 10}
    assert all(row["claimed_by"] is None for row in rows(app).values())


def test_a_relay_slower_than_the_timeout_defers_and_one_within_it_delivers(
    make_mailer, sink: SmtpSink, db_url: str
) -> None:
    app = make_mailer(
        database=db_url,
        smtp={"host": sink.host, "port": sink.port, "timeout": 0.3, "connections": 1},
    )
    ids = queue(app, 1)
    sink.faults.delay = 0.6

    slow = send(app)
    assert "timed out" in rows(app)[ids[0]]["last_error"]
    sink.faults.delay = 0.05
    within = send(app, now=NOW + timedelta(hours=1))

    assert (slow.sent, slow.deferred) == (0, 1)
    assert within.sent == 1
    assert ids[0] in sink.message_ids()


def test_stop_finishes_the_message_in_flight_and_leaves_the_rest_pending(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, 20)
    stop = threading.Event()
    # As SIGTERM would: set while the third message is in flight (before its 250 goes back).
    sink.on_accept = lambda received: stop.set() if sink.count == 3 else None

    report = send(smtp_mailer, workers=1, stop=stop)

    assert report.sent == 3
    assert report.stopped
    assert statuses(smtp_mailer) == {"sent": 3, "pending": 17}
    assert all(row["claimed_by"] is None for row in rows(smtp_mailer).values())
    assert send(smtp_mailer).sent == 17


def test_several_workers_share_the_outbox_without_sending_anything_twice(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 400, areas=("medway", "dover"))

    report = send(smtp_mailer, workers=4)

    assert report.sent == 400
    assert len(sink.message_ids()) == 400
    assert sorted(sink.message_ids()) == sorted(ids)
    assert sink.connections >= 4


@pytest.mark.parametrize("per_connection", [7])
def test_a_connection_is_renewed_after_per_connection_messages(
    make_mailer, sink: SmtpSink, db_url: str, per_connection: int
) -> None:
    app = make_mailer(
        database=db_url,
        smtp={"host": sink.host, "port": sink.port, "per_connection": per_connection},
    )
    queue(app, 21)

    send(app, workers=1)

    assert sink.connections == 3


def test_more_workers_than_the_connection_pool_holds_still_deliver_everything(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    # Each worker holds a connection for its sent marks for the whole run; those come
    # from outside the pool (5 + 10 overflow) that claims and builds share.
    ids = queue(smtp_mailer, 200, areas=("medway", "dover"))

    report = send(smtp_mailer, workers=20)

    assert report.sent == 200
    assert sorted(sink.message_ids()) == sorted(ids)
