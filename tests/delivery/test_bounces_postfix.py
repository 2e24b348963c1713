"""Bounces that come later, as a real smarthost makes them: a private Postfix (its own
config, queue and port under a temporary folder, never the system's) accepts the mail,
relays it to a loopback sink that refuses one recipient, and writes the delivery status
notification itself, to the message's own return path, into the bounce Maildir.
``alerts bounces`` then reads it and counts it as a bounce at RCPT TO would be."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from alerts.app import App
from alerts.delivery import return_paths
from alerts.delivery.bounces import read_bounces
from alerts.testing import Faults, SmtpSink
from tests.support.delivery import DELIVERY, queue, rows, send, statuses
from tests.support.postfix import PrivatePostfix, unavailable
from tests.support.sections import Stages

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")

COUNT = 4
GONE = "reader2@residents.example.net"
BOUNCE_DOMAIN = "bounces.example.org"  # under email.from's example.org: SPF and DMARC align


@pytest.fixture
def refusing_sink() -> Iterator[SmtpSink]:
    with SmtpSink(faults=Faults(reject={GONE})) as server:
        yield server


@pytest.fixture
def postfix(refusing_sink: SmtpSink) -> Iterator[PrivatePostfix]:
    with PrivatePostfix(relay_port=refusing_sink.port, bounce_domain=BOUNCE_DOMAIN) as instance:
        yield instance


def wait(condition: Callable[[], object], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def subscriber_of(app: App | Stages, email: str) -> tuple[str, int]:
    [row] = [r for r in app.store.fixtures.table_rows("subscribers") if r["email"] == email]
    return row["status"], row["bounces"]


def test_a_dsn_written_by_a_real_postfix_bounces_the_message_and_suppresses_its_address(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    refusing_sink: SmtpSink,
    postfix: PrivatePostfix,
) -> None:
    config = write_config(
        delivery={
            **DELIVERY,
            "max_bounces": 1,
            "backend": "smtp",
            "smtp": {
                "host": "127.0.0.1",
                "port": postfix.port,
                "security": "none",
                "connections": 1,
            },
            "return_path": {"enabled": True, "domain": BOUNCE_DOMAIN},
            "bounces": {"maildir": str(postfix.maildir)},
        },
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
    )
    app = App(config)
    ids = queue(app, COUNT, domain="residents.example.net")

    report = send(app)
    # Postfix took every message (the 250 is its own); the refusal comes later.
    assert (report.sent, report.bounced) == (COUNT, 0)
    assert wait(lambda: refusing_sink.count >= COUNT - 1), postfix.log()
    assert wait(postfix.delivered), f"no DSN reached the bounce Maildir: {postfix.log()}"
    # Each message went with its own return path.
    senders = {r.mail_from for r in refusing_sink.received}
    assert len(senders) == COUNT - 1 and all(
        s.startswith("bounces+") and s.endswith("@" + BOUNCE_DOMAIN) for s in senders
    )

    result = run_cli("bounces", config=config)

    assert result.exit_code == 0, result.output
    assert "1 bounces" in result.output and "1 addresses suppressed" in result.output
    assert subscriber_of(app, GONE) == ("suppressed", 1)
    bounced = [i for i, row in rows(app).items() if row["status"] == "bounced"]
    assert len(bounced) == 1 and "5.1.1" in rows(app)[bounced[0]]["last_error"]
    assert statuses(app) == {"sent": COUNT - 1, "bounced": 1}
    assert set(ids) >= set(bounced)
    # Read once: running it again counts nothing twice.
    again = read_bounces(
        app.config.delivery,
        app.store,
        app.clock,
        return_paths(app.config.delivery, app.config.mail),
    )
    assert (again.read, again.bounces) == (0, 0)
    app.close()


def test_a_forged_dsn_naming_a_resident_suppresses_nobody(
    make_mailer: Callable[..., Stages],
    refusing_sink: SmtpSink,
    postfix: PrivatePostfix,
    db_url: str,
) -> None:
    app = make_mailer(
        database=db_url,
        max_bounces=1,
        smtp={"host": refusing_sink.host, "port": refusing_sink.port},
        return_path={"enabled": True, "domain": BOUNCE_DOMAIN},
        bounces={"maildir": str(postfix.maildir)},
    )
    queue(app, COUNT, domain="residents.example.net")
    send(app)
    victim = "reader1@residents.example.net"
    forged = (
        "To: bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.example.org\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    (postfix.maildir / "new").mkdir(parents=True, exist_ok=True)
    (postfix.maildir / "cur").mkdir(exist_ok=True)
    (postfix.maildir / "tmp").mkdir(exist_ok=True)
    (postfix.maildir / "new" / "1.forged.test").write_text(forged)

    report = read_bounces(app.delivery, app.store, app.clock, return_paths(app.delivery, app.mail))

    assert (report.read, report.bounces, report.unverified, report.suppressed) == (1, 0, 1, 0)
    assert subscriber_of(app, victim) == ("active", 0)
