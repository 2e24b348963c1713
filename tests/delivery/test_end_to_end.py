"""From a stored advisory to the relay, through the real stages: subscribers, digest
queueing, the digests' MessageFactory, delivery over SMTP (aiosmtpd) or into a Maildir,
and the ``alerts send`` / ``alerts status`` commands."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from alerts.app import App
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.testing import SmtpSink, bare_message_id
from alerts.types import Frequency
from tests.support import NOW
from tests.support.delivery import queue, rows, statuses
from tests.support.digests import advisory, save, subscribe
from tests.support.sections import Stages


def queue_one_alert(app: App | Stages) -> None:
    stages = Stages.of(app)
    save(app, advisory("courier-fraud", areas=("medway",)))
    subscribe(app, "ann@example.org", ["chatham"], frequency=Frequency.IMMEDIATE)
    subscribe(app, "bob@example.org", ["dover"], frequency=Frequency.IMMEDIATE)  # not concerned
    assert (
        queue_digests(
            stages.mail,
            stages.digests,
            app.store,
            app.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW,
        ).messages
        == 1
    )


def test_a_queued_alert_reaches_the_relay_through_the_real_message_factory(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    queue_one_alert(smtp_mailer)

    report = send_pending(
        smtp_mailer.delivery, smtp_mailer.mail, smtp_mailer.store, smtp_mailer.clock, now=NOW
    )

    assert report.sent == 1
    [got] = sink.received
    assert got.rcpt_tos == ("ann@example.org",)
    message = got.message()
    [row] = rows(smtp_mailer).values()
    assert bare_message_id(message["Message-ID"]) == bare_message_id(row["message_id"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",))
    assert text is not None and "Advisory courier-fraud" in text.get_content()
    assert statuses(smtp_mailer) == {"sent": 1}


def test_alerts_send_delivers_into_the_maildir_by_default_and_status_shows_it(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    config = write_config()
    app = App(config)
    queue_one_alert(app)
    app.close()

    sent = run_cli("send", "--json", config=config)
    status = run_cli("status", "--json", config=config)
    text = run_cli("status", config=config)

    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["sent"] == 1
    box = mailbox.Maildir(tmp_path / "maildir", create=False)
    [message] = list(box)
    assert message["To"] == "ann@example.org"
    assert b"\r\n" not in box.get_bytes(box.keys()[0])  # local line ends in a Maildir file
    info = json.loads(status.stdout)
    assert info["outbox"]["sent"] == 1 and info["outbox"]["pending"] == 0
    assert info["last_run"]["kind"] == "send" and info["last_run"]["ok"] is True
    assert "1 sent" in text.stdout and "Last run: alerts send at" in text.stdout


def test_alerts_send_reports_a_relay_it_cannot_use_in_one_line_and_exits_1(
    write_config: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    with SmtpSink() as plain:
        config = write_config(
            delivery={
                "backend": "smtp",
                "smtp": {"host": "127.0.0.1", "port": plain.port, "security": "starttls"},
            }
        )
        app = App(config)
        queue_one_alert(app)
        app.close()

        result = run_cli("send", config=config)

    assert result.exit_code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: 127.0.0.1:")
    assert "does not offer STARTTLS" in error
    assert "Traceback" not in result.output
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    assert status["outbox"]["pending"] == 1
    assert status["last_run"]["ok"] is False


def test_alerts_send_with_workers_exits_1_when_messages_fail_for_good(
    write_config: Callable[..., Path], run_cli: Callable[..., Result], sink: SmtpSink
) -> None:
    config = write_config(
        delivery={
            "backend": "smtp",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
        }
    )
    app = App(config)
    queue(app, 6)
    app.close()
    sink.faults.refuse_message.add("reader4@example.org")
    sink.faults.reject.add("reader5@example.org")

    result = run_cli("send", "--workers", "3", config=config)

    assert result.exit_code == 1
    assert "Sent 4, deferred 0, bounced 1, failed 1, suppressed 0." in result.stdout
    assert len(sink.received) == 4
    status = run_cli("status", config=config).stdout
    assert "4 sent, 1 bounced, 1 failed" in status
    assert "Last run: alerts send at" in status and ": with failures" in status
