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
from pathlib import Path

import pytest
from click.testing import Result

from alerts.app import App
from alerts.delivery.base import RelayError
from alerts.delivery.refusals import about_relaying
from alerts.testing import DROP, SmtpSink
from tests.support import NOW
from tests.support.delivery import DELIVERY, queue, rows, send, statuses
from tests.support.sections import Stages

COUNT = 5
MAX_ATTEMPTS = int(DELIVERY["max_attempts"])
RUNS = MAX_ATTEMPTS + 2  # more runs than a message has attempts


def subscriber_states(app: App | Stages) -> set[tuple[str, int]]:
    """Every subscriber's (status, bounces)."""
    return {(row["status"], row["bounces"]) for row in app.store.fixtures.table_rows("subscribers")}


def spread(i: int) -> str:
    """Addresses at three domains in turn."""
    return f"reader{i}@{('example.org', 'example.net', 'mail.example.com')[i % 3]}"


# -- relay-level failures do not use up a message's attempts ---------------------------


OUTAGES = [
    ("connect", "421 4.3.2 Service not available, closing channel"),
    ("connect", DROP),
    ("ehlo", "451 4.3.0 try again later"),
    ("mail", "421 4.3.2 shutting down"),
    ("rcpt", DROP),
    ("body", "421 4.4.2 closing, timeout"),
]


@pytest.mark.parametrize(
    ("stage", "reply"), OUTAGES, ids=[f"{s}-{r[:3] or 'drop'}" for s, r in OUTAGES]
)
def test_a_relay_down_for_more_runs_than_max_attempts_delivers_every_message_once_when_it_is_back(
    smtp_mailer: Stages, sink: SmtpSink, stage: str, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(stage, reply)

    outage = [send(smtp_mailer, now=NOW + timedelta(hours=run)) for run in range(RUNS)]
    during = rows(smtp_mailer)
    sink.faults.injected.clear()  # the relay is back
    after = send(smtp_mailer, now=NOW + timedelta(hours=RUNS))

    assert all(report.sent == report.failed == report.bounced == 0 for report in outage)
    assert all(report.errors and "relay unavailable" in report.errors[0] for report in outage)
    assert {row["status"] for row in during.values()} == {"pending"}
    assert {row["attempts"] for row in during.values()} == {0}, (
        "the outage counted against the messages"
    )
    assert (after.sent, after.failed, after.errors) == (COUNT, 0, [])
    received = collections.Counter(sink.message_ids())
    assert set(received) == set(ids) and max(received.values()) == 1
    assert {row["attempts"] for row in rows(smtp_mailer).values()} == {1}


def test_a_relay_deferral_names_the_relays_reply_and_waits_the_relays_backoff(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("connect", "421 4.3.2 maintenance")

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.deferred) == (0, 3)
    deferred = [rows(smtp_mailer)[i] for i in ids[:3]]
    assert all("421 4.3.2 maintenance" in row["last_error"] for row in deferred)
    # retry_base is 60 s, with jitter of a fifth either way, whatever the attempts.
    assert all(
        NOW + timedelta(seconds=48) <= row["next_attempt_at"] <= NOW + timedelta(seconds=72)
        for row in deferred
    )
    assert all(rows(smtp_mailer)[i]["next_attempt_at"] == NOW for i in ids[3:]), (
        "untried ones stay due"
    )


def test_a_relay_that_refuses_connections_for_long_fails_no_message(
    make_mailer: Callable[..., Stages], db_url: str
) -> None:
    with SmtpSink() as closed:
        port = closed.port  # nothing listens here once the sink stops
    app = make_mailer(database=db_url, smtp={"host": "127.0.0.1", "port": port, "connections": 1})
    queue(app, COUNT)

    reports = [send(app, now=NOW + timedelta(hours=run)) for run in range(RUNS)]

    assert all("Connection refused" in r.errors[0] for r in reports)
    assert statuses(app) == {"pending": COUNT}
    assert {row["attempts"] for row in rows(app).values()} == {0}


def test_a_message_the_relay_always_refuses_to_finish_while_others_go_uses_up_its_attempts_and_fails(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    poison = rows(smtp_mailer)[ids[2]]["email"]
    sink.faults.inject("body", "421 4.3.2 closing", recipient=poison)

    for run in range(RUNS):
        when = NOW + timedelta(days=run)
        if run:  # new mail for others each day, as digests keep coming
            ids += queue(smtp_mailer, 2, now=when, domain=f"day{run}.example.org")
        send(smtp_mailer, now=when, workers=1)

    row = rows(smtp_mailer)[ids[2]]
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert row["last_error"].startswith("gave up after 3 attempts")
    assert sorted(sink.message_ids()) == sorted(ids[:2] + ids[3:])


def test_a_session_lost_with_no_later_message_to_tell_why_counts_no_attempt(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    [only] = queue(smtp_mailer, 1)
    sink.faults.inject("data", "421 4.3.2 closing")

    report = send(smtp_mailer)

    assert (report.sent, report.deferred) == (0, 1)
    row = rows(smtp_mailer)[only]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert "421 4.3.2 closing" in row["last_error"]
    assert report.errors and "relay unavailable" in report.errors[0]


# -- a relay that refuses every recipient for its own reasons ------------------------------

POLICY = [
    "554 5.7.1 Relay access denied",
    "550 5.7.1 Sender alerts@example.org is not permitted to relay through this server",
    "530 5.7.0 Authentication required",
    "530 Authentication required",
    "550 5.7.27 Relaying denied. Proper authentication required",
]


@pytest.mark.parametrize("reply", POLICY)
def test_a_relay_refusing_every_recipient_for_relaying_stops_the_run_naming_the_config_and_bounces_nobody(
    smtp_mailer: Stages, sink: SmtpSink, reply: str
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject("rcpt", reply)

    failures = []
    for run in range(RUNS):  # the operator has not noticed yet: run after run
        with pytest.raises(RelayError) as caught:
            send(smtp_mailer, now=NOW + timedelta(hours=run), workers=1)
        failures.append(caught.value)

    error = failures[0]
    assert error.where == "delivery.smtp"
    assert "refused 3 recipients in a row at RCPT TO" in str(error)
    assert f'with "{reply}"' in str(error)
    assert "no address was counted as a bounce" in str(error)
    assert (
        error.hint and "delivery.smtp.username" in error.hint and "delivery.smtp.host" in error.hint
    )
    assert statuses(smtp_mailer) == {"pending": COUNT}
    assert {(row["attempts"], row["claimed_by"]) for row in rows(smtp_mailer).values()} == {
        (0, None)
    }
    assert subscriber_states(smtp_mailer) == {("active", 0)}, (
        "somebody was bounced for the relay's refusal"
    )
    sink.faults.injected.clear()  # the operator fixed delivery.smtp
    after = send(smtp_mailer, now=NOW + timedelta(hours=RUNS))
    assert (after.sent, after.bounced) == (COUNT, 0)
    assert sorted(sink.message_ids()) == sorted(ids)


def test_with_several_workers_the_first_to_see_the_relay_refuse_every_recipient_stops_them_all_and_nobody_bounces(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, 160)  # more than one batch for each of the workers
    sink.faults.inject("rcpt", "554 5.7.1 Relay access denied")

    with pytest.raises(RelayError, match="will not relay for this account"):
        send(smtp_mailer, workers=3)

    assert statuses(smtp_mailer) == {"pending": 160}
    assert {(row["attempts"], row["claimed_by"]) for row in rows(smtp_mailer).values()} == {
        (0, None)
    }
    assert subscriber_states(smtp_mailer) == {("active", 0)}


def test_the_same_refusal_for_recipients_at_different_domains_condemns_the_relay_whatever_its_words(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT, emails=spread)
    for i in range(COUNT):  # the relay names each address, but says the same of each
        sink.faults.inject(
            "rcpt",
            f"550 <{spread(i)}>: Recipient address rejected: not accepted here",
            recipient=spread(i),
        )

    with pytest.raises(
        RelayError,
        match=r'with "550 <reader2@\S+>: Recipient address rejected: not accepted here" \(at example\.net, example\.org,',
    ):
        send(smtp_mailer, workers=1)

    assert statuses(smtp_mailer) == {"pending": COUNT}
    assert subscriber_states(smtp_mailer) == {("active", 0)}
    assert len(ids) == COUNT and not sink.received


def test_no_such_user_for_several_recipients_in_a_row_stays_their_bounces(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT, emails=spread)
    gone = [spread(i) for i in range(3)]
    for address in gone:
        sink.faults.inject(
            "rcpt", "550 5.1.1 User unknown in virtual mailbox table", recipient=address
        )

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.bounced, report.errors) == (COUNT - 3, 3, [])
    assert [rows(smtp_mailer)[i]["status"] for i in ids] == ["bounced"] * 3 + ["sent"] * 2
    assert subscriber_states(smtp_mailer) == {("active", 1), ("active", 0)}


def test_a_single_no_such_user_is_a_bounce_even_as_the_last_message_of_the_run(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(
        "rcpt", "550 5.1.1 no such user", recipient=rows(smtp_mailer)[ids[-1]]["email"]
    )

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.bounced) == (COUNT - 1, 1)
    assert rows(smtp_mailer)[ids[-1]]["status"] == "bounced"


def test_one_recipient_refused_for_relaying_while_others_go_fails_that_message_without_a_bounce(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, COUNT)
    sink.faults.inject(
        "rcpt", "554 5.7.1 Relay access denied", recipient=rows(smtp_mailer)[ids[1]]["email"]
    )

    report = send(smtp_mailer, workers=1)

    assert (report.sent, report.failed, report.bounced, report.errors) == (COUNT - 1, 1, 0, [])
    row = rows(smtp_mailer)[ids[1]]
    assert row["status"] == "failed"
    assert (
        row["last_error"]
        == "RCPT TO: 554 5.7.1 Relay access denied (refused for relaying, not for the address)"
    )
    assert subscriber_states(smtp_mailer) == {("active", 0)}


def test_a_refusal_for_relaying_with_nothing_after_it_is_deferred_not_bounced(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 2)
    sink.faults.inject("rcpt", "554 5.7.1 Relay access denied")

    report = send(smtp_mailer, workers=1)

    assert (report.deferred, report.bounced, report.errors) == (2, 0, [])
    assert all(rows(smtp_mailer)[i]["status"] == "pending" for i in ids)
    assert "deferred, not bounced" in rows(smtp_mailer)[ids[0]]["last_error"]
    assert subscriber_states(smtp_mailer) == {("active", 0)}


def test_alerts_send_against_a_relay_that_will_not_relay_says_so_in_one_line_and_keeps_the_mail(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], sink: SmtpSink
) -> None:
    config = write_config(
        delivery={
            "backend": "smtp",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
        },
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
    )
    app = App(config)
    queue(app, 12)
    sink.faults.inject("rcpt", "554 5.7.1 Relay access denied")

    result = run_cli("send", config=config)

    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "will not relay for this account" in errors[0]
    assert "check delivery.smtp.username" in errors[0]
    assert statuses(app) == {"pending": 12}
    assert subscriber_states(app) == {("active", 0)}
    app.close()


@pytest.mark.parametrize(
    ("code", "detail", "relaying"),
    [
        (554, "5.7.1 <ann@example.net>: Relay access denied", True),
        (550, "5.7.1 Unable to relay for ann@example.net", True),
        (530, "5.7.0 Must issue a STARTTLS command first", True),
        (
            550,
            "5.7.1 Client does not have permissions to send as this sender; authentication required",
            True,
        ),
        (554, "Relaying denied", True),
        (554, "5.7.1 recipient refused", False),
        (
            550,
            "5.1.1 <relay@example.net>: no such user",
            False,
        ),  # an address named "relay" is not the word
        (
            550,
            "5.1.1 relay-user unknown",
            False,
        ),  # a mailbox status is the mailbox's, whatever it says
        (550, "Requested action not taken: mailbox unavailable", False),
    ],
)
def test_a_refusal_is_read_as_about_relaying_only_from_its_status_and_words(
    code: int, detail: str, relaying: bool
) -> None:
    assert about_relaying(code, detail) is relaying
