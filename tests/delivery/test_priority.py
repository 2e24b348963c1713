"""Transactional mail first, and what operators measure: each message's acceptance time,
the latency from its content's arrival, and the delivery totals, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from alerts.store.subscribers import PENDING
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import send_confirmation
from alerts.testing import Faults, SmtpSink
from tests.support import NOW
from tests.support.delivery import queue, rows, send
from tests.support.sections import Stages
from tests.support.tables import set_columns


def test_a_confirmation_queued_behind_a_thousand_alerts_goes_first(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue(smtp_mailer, 1000, now=NOW - timedelta(minutes=1))
    newcomer = smtp_mailer.store.subscribers.add(
        make_subscription(smtp_mailer.gazetteer, "newcomer@example.org", ["dover"]),
        now=NOW,
        status=PENDING,
    )
    send_confirmation(smtp_mailer.mail, smtp_mailer.store, newcomer, ["Dover"], now=NOW)

    send(smtp_mailer, workers=1)

    assert sink.received[0].rcpt_tos == ("newcomer@example.org",)
    assert sink.count == 1001


def test_each_message_records_when_the_relay_accepted_it_and_its_latency(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 3, now=NOW)
    set_columns(
        smtp_mailer.store.engine, "outbox", {"arrived_at": NOW - timedelta(seconds=90)}
    )  # 90 s before

    send(smtp_mailer, now=NOW)

    for message_id in ids:
        row = rows(smtp_mailer)[message_id]
        assert row["sent_at"] == NOW and row["latency_ms"] == 90_000


def test_the_delivery_totals_count_every_outcome_across_runs(
    make_mailer: object, db_url: str
) -> None:
    with SmtpSink(
        faults=Faults(reject={"reader1@example.org"}, defer={"reader2@example.org"})
    ) as sink:
        app = make_mailer(database=db_url, smtp={"host": sink.host, "port": sink.port})  # type: ignore[operator]
        before = app.store.metrics.delivery_totals()
        queue(app, 4)
        send(app)
        send(app, now=NOW + timedelta(hours=1))  # the deferred one, deferred again
        after = app.store.metrics.delivery_totals()
    assert {k: after[k] - before[k] for k in after} == {
        "sent": 2,
        "deferred": 2,
        "bounced": 1,
        "failed": 0,
        "unknown": 0,
    }
