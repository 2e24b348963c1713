"""Every reply at every SMTP stage is read for the message it concerns, against a real
aiosmtpd server that answers what the test chooses (``alerts.testing.Faults.inject``).

Temporary (4xx, and 552 at RCPT TO) defers that message with backoff; permanent (5xx)
fails or bounces that message only; only what condemns the relay (refused, TLS, AUTH,
421, a 5xx greeting) pauses the connection or stops the run, naming the cause. After any
error the session is reset or replaced, and the rest goes through in the same run.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery.base import RelayError
from alerts.testing import DROP, SmtpSink
from tests.support import NOW
from tests.support.delivery import queue, queue_more, rows, send, statuses
from tests.support.sections import Stages

FAULTY = "reader2@example.org"
COUNT = 5


def bounces(app: App | Stages) -> int:
    return sum(row["bounces"] for row in app.store.fixtures.table_rows("subscribers"))


# -- one message's stages: RCPT TO, the DATA command, after the body ---------------------

#: (stage, reply, what becomes of that message, its status)
PER_MESSAGE = [
    ("rcpt", "451 4.2.1 mailbox busy, try later", "deferred", "pending"),
    ("rcpt", "452 4.2.2 over quota", "deferred", "pending"),
    ("rcpt", "552 5.2.2 mailbox full", "deferred", "pending"),  # RFC 5321 4.5.3.1.10
    ("rcpt", "550 5.1.1 no such user", "bounced", "bounced"),
    ("rcpt", "554 5.7.1 recipient refused", "bounced", "bounced"),
    ("data", "451 4.3.0 try again later", "deferred", "pending"),
    ("data", "554 5.5.0 no valid recipients", "failed", "failed"),
    ("data", "552 5.3.4 too big", "failed", "failed"),
    ("body", "451 4.3.0 queue full", "deferred", "pending"),
    ("body", "452 4.3.1 insufficient storage", "deferred", "pending"),
    ("body", "554 5.6.0 content refused", "failed", "failed"),
    ("body", "552 5.3.4 message too big", "failed", "failed"),
]


@pytest.mark.parametrize(("stage", "reply", "outcome", "status"), PER_MESSAGE)
def test_a_reply_for_one_message_decides_that_message_only_and_the_rest_go_on_the_same_connection(
    smtp_mailer: Stages, sink: SmtpSink, stage: str, reply: str, outcome: str, status: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, reply, recipient=FAULTY)

    report = send(smtp_mailer, workers=1)

    assert report.sent == COUNT - 1
    assert getattr(report, outcome) == 1
    assert not report.errors
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])
    assert sink.connections == 1, "the session was reset, not given up"
    row = rows(smtp_mailer)[ids[2]]
    assert (row["status"], row["attempts"], row["claimed_by"]) == (status, 1, None)
    code = reply.split()[0]
    stage_name = {"rcpt": "RCPT TO", "data": "DATA", "body": "end of data"}[stage]
    assert row["last_error"].startswith(f"{stage_name}: {code} "), row["last_error"]
    if outcome == "deferred":
        assert NOW + timedelta(seconds=48) <= row["next_attempt_at"] <= NOW + timedelta(seconds=72)
    assert bounces(smtp_mailer) == (1 if outcome == "bounced" else 0)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_after_a_refusal_before_the_body_the_session_is_reset_so_the_next_mail_from_is_not_nested(
    smtp_mailer: Stages, sink: SmtpSink, stage: str
) -> None:
    queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, "554 5.7.1 refused", recipient=FAULTY)

    send(smtp_mailer, workers=1)

    assert sink.resets == 1
    assert len(sink.received) == COUNT - 1


@pytest.mark.parametrize("stage", ["rcpt", "data", "body"])
@pytest.mark.parametrize("reply", ["421 4.3.2 shutting down", DROP], ids=["421", "dropped"])
def test_a_relay_closing_the_session_mid_message_defers_it_and_a_new_connection_takes_the_rest(
    smtp_mailer: Stages, sink: SmtpSink, stage: str, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, reply, recipient=FAULTY)

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred, report.failed, report.bounced) == (COUNT - 1, 1, 0, 0)
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])
    assert sink.connections == 2
    row = rows(smtp_mailer)[ids[2]]
    # A body that got no reply may have been delivered: tried again a bounded number of
    # times (its unanswered count), not charged as an attempt.
    unanswered = stage == "body" and not reply
    assert (row["status"], row["attempts"], row["unanswered"]) == (
        "pending",
        0 if unanswered else 1,
        int(unanswered),
    )
    dropped = "no reply after the body" if stage == "body" else "connection lost"
    assert ("421" in row["last_error"]) if reply else (dropped in row["last_error"])


def test_a_failed_rset_replaces_the_connection_and_the_rest_go(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("rcpt", "550 5.1.1 no such user", recipient=FAULTY)
    sink.faults.inject("rset", "421 4.3.2 going away")

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.bounced) == (COUNT - 1, 1)
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])
    assert sink.connections == 2


@pytest.mark.parametrize("reply", ["421 4.3.2 bye", "554 5.0.0 whatever", "250 ok", DROP])
def test_whatever_quit_gets_the_messages_already_accepted_stay_sent(
    make_mailer: Callable[..., Stages], sink: SmtpSink, db_url: str, reply: str
) -> None:
    app = make_mailer(
        database=db_url, smtp={"host": sink.host, "port": sink.port, "per_connection": 2}
    )
    ids = queue(app, COUNT)
    sink.faults.inject("quit", reply)

    report = send(app, workers=1)

    assert (report.sent, report.errors) == (COUNT, [])
    assert sorted(sink.message_ids()) == sorted(ids)
    assert statuses(app) == {"sent": COUNT}


# -- MAIL FROM: the same sender for every message -------------------------------------------


@pytest.mark.parametrize("reply", ["451 4.3.0 try later", "452 4.3.1 insufficient storage now"])
def test_a_temporary_reply_to_mail_from_is_the_relays_it_pauses_sending_and_spends_no_attempt(
    smtp_mailer: Stages, sink: SmtpSink, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("mail", reply, times=1)

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred, report.failed) == (0, 1, 0)
    assert report.errors and reply in report.errors[0]
    row = rows(smtp_mailer)[ids[0]]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert row["last_error"].startswith("MAIL FROM: 45")
    assert {(r["status"], r["attempts"]) for r in rows(smtp_mailer).values()} == {("pending", 0)}


@pytest.mark.parametrize(
    "reply", ["552 5.3.4 message size exceeds fixed limit", "550 5.7.1 policy says no"]
)
def test_a_permanent_reply_to_one_mail_from_fails_that_message_once_the_next_is_let_past(
    smtp_mailer: Stages, sink: SmtpSink, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("mail", reply, times=1)

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.failed, report.bounced, report.errors) == (COUNT - 1, 1, 0, [])
    row = rows(smtp_mailer)[ids[0]]
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == f"MAIL FROM: {reply}"
    assert sorted(sink.message_ids()) == sorted(ids[1:])
    assert bounces(smtp_mailer) == 0


def test_a_message_over_the_relays_size_limit_fails_at_mail_from_and_stops_holding_the_queue(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    small = queue(smtp_mailer, COUNT)
    subscriber_id = rows(smtp_mailer)[small[0]]["subscriber_id"]
    # A digest for the first subscriber that is due first and far bigger than the rest.
    [big] = queue_more(smtp_mailer, subscriber_id, [NOW - timedelta(hours=1)], size=200_000)
    sink.faults.size_limit = 100_000

    report = send(smtp_mailer, workers=1)
    again = send(smtp_mailer, now=NOW + timedelta(days=1))

    assert (report.sent, report.failed) == (COUNT, 1)
    row = rows(smtp_mailer)[big]
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"].startswith("MAIL FROM: 552 5.3.4")
    assert again.sent == again.failed == 0
    assert sorted(sink.message_ids()) == sorted(small)


def test_a_relay_refusing_the_sender_for_every_message_stops_the_run_naming_email_from_and_loses_nothing(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, COUNT)
    sink.faults.inject("mail", "553 5.7.1 sender not allowed for this account")

    with pytest.raises(RelayError) as caught:
        send(smtp_mailer, workers=1)

    assert caught.value.where == "email.from"
    assert "refused the sender alerts@example.org" in str(caught.value)
    assert "553 5.7.1 sender not allowed" in str(caught.value)
    assert statuses(smtp_mailer) == {"pending": COUNT}
    assert {row["attempts"] for row in rows(smtp_mailer).values()} == {0}


def test_a_refused_mail_from_with_nothing_after_it_is_deferred_not_failed(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    [only] = queue(smtp_mailer, 1)
    sink.faults.inject("mail", "550 5.7.1 not now")

    report = send(smtp_mailer)

    assert (report.deferred, report.failed) == (1, 0)
    row = rows(smtp_mailer)[only]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["last_error"].startswith("MAIL FROM: 550 5.7.1 not now (deferred")


def test_421_at_mail_from_defers_that_message_and_a_new_connection_takes_the_rest(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("mail", "421 4.3.2 closing", times=1)

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred) == (COUNT - 1, 1)
    assert "421 4.3.2 closing" in rows(smtp_mailer)[ids[0]]["last_error"]
    assert sink.connections == 2


# -- the session: greeting, EHLO (STARTTLS and AUTH are in test_smtp_tls) --------------------


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("connect", "421 4.3.2 busy"),
        ("connect", "450 4.3.2 busy"),
        ("ehlo", "421 4.3.2 busy"),
        ("ehlo", "451 4.3.0 hm"),
    ],
)
def test_a_temporary_refusal_of_the_session_defers_one_message_and_the_next_connection_takes_the_rest(
    smtp_mailer: Stages, sink: SmtpSink, stage: str, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, reply, times=1)

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred, report.failed) == (COUNT - 1, 1, 0)
    assert reply in rows(smtp_mailer)[ids[0]]["last_error"]
    assert sorted(sink.message_ids()) == sorted(ids[1:])


@pytest.mark.parametrize(
    ("stage", "reply", "says"),
    [
        ("connect", "554 5.7.1 no service for you", "refused the session at connect: 554 5.7.1"),
        ("ehlo", "550 5.7.1 go away", "refused the session at EHLO: 550 5.7.1"),
    ],
)
def test_a_permanent_refusal_of_the_session_stops_the_run_naming_it_and_nothing_is_lost(
    smtp_mailer: Stages, sink: SmtpSink, stage: str, reply: str, says: str
) -> None:
    queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, reply)

    with pytest.raises(RelayError, match=says):
        send(smtp_mailer, workers=1)

    assert statuses(smtp_mailer) == {"pending": COUNT}
    assert {row["attempts"] for row in rows(smtp_mailer).values()} == {0}


def test_a_relay_that_refuses_ehlo_once_is_greeted_with_helo_instead(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("ehlo", "502 5.5.2 EHLO not implemented", times=1)

    report = send(smtp_mailer, workers=1)

    assert report.sent == COUNT
    assert sorted(sink.message_ids()) == sorted(ids)


def test_a_relay_that_keeps_closing_sessions_pauses_the_worker_naming_the_reply(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, COUNT)
    sink.faults.inject("connect", "421 4.3.2 maintenance")

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred) == (0, 3)
    assert (
        report.errors
        and "relay unavailable" in report.errors[0]
        and "421 4.3.2 maintenance" in report.errors[0]
    )
    assert statuses(smtp_mailer) == {"pending": COUNT}


# -- the check: one faulty recipient of 60, through `alerts send` -------------------


def test_alerts_send_delivers_the_other_57_of_60_past_three_faulty_recipients_and_the_temporary_ones_later(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    sink: SmtpSink,
    clock: ManualClock,
) -> None:
    config = write_config(
        delivery={
            "backend": "smtp",
            "retry_base": 60.0,
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", "connections": 4},
        },
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
    )
    app = App(config)
    ids = queue(app, 60, areas=("medway", "dover", "kent"))
    app.close()
    later, refused, full = "reader10@example.org", "reader30@example.org", "reader50@example.org"
    sink.faults.inject("data", "451 4.3.0 try again later", recipient=later)
    sink.faults.inject("data", "554 5.7.1 message refused", recipient=refused)
    sink.faults.inject("rcpt", "552 5.2.2 mailbox full", recipient=full)

    first = run_cli("send", "--json", config=config)
    sink.faults.injected.clear()  # the relay recovers
    clock.set(NOW + timedelta(hours=1))
    second = run_cli("send", "--json", config=config)
    third = run_cli("send", "--json", config=config)

    summary: dict[str, Any] = json.loads(first.stdout)
    assert (summary["sent"], summary["deferred"], summary["failed"], summary["bounced"]) == (
        57,
        2,
        1,
        0,
    )
    assert summary["errors"] == []
    assert first.exit_code == 1  # one message failed for good
    assert json.loads(second.stdout)["sent"] == 2
    assert json.loads(third.stdout)["sent"] == 0
    received = collections.Counter(sink.message_ids())
    assert max(received.values()) == 1, "somebody got a message twice"
    assert set(received) == set(ids) - {ids[30]}
    assert {r.rcpt_tos[0] for r in sink.received} >= {later, full}
    assert refused not in {r.rcpt_tos[0] for r in sink.received}


# -- addresses stored before the door refused non-ASCII ones -------------------------------


def legacy(i: int) -> str:
    return "josé@example.org" if i == 1 else f"reader{i}@example.org"


def test_a_stored_non_ascii_address_goes_with_smtputf8_when_the_relay_offers_it(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 3, emails=legacy)

    report = send(smtp_mailer, workers=1)

    assert report.sent == 3
    assert sorted(sink.message_ids()) == sorted(ids)
    assert "josé@example.org" in {r.rcpt_tos[0] for r in sink.received}


def test_a_stored_non_ascii_address_is_deferred_with_the_reason_when_the_relay_lacks_smtputf8(
    make_mailer: Callable[..., Stages], db_url: str
) -> None:
    with SmtpSink(smtputf8=False) as plain:
        app = make_mailer(database=db_url, smtp={"host": plain.host, "port": plain.port})
        ids = queue(app, 3, emails=legacy)

        report = send(app, workers=1)

    assert (report.sent, report.deferred) == (2, 1)
    row = rows(app)[ids[1]]
    assert row["status"] == "pending"
    assert "the address is not ASCII and the relay" in row["last_error"]
    assert "does not offer SMTPUTF8" in row["last_error"]
