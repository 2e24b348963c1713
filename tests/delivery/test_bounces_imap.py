"""The bounce mailbox over IMAPS, against a real Dovecot (a private instance: its own
config, port and Maildir under a temporary folder, a certificate from a CA made for the
test; never the system's). The DSN is read the same way as from a Maildir; a handled
message is flagged (or moved) on the server and never counted twice; a forged one
suppresses nobody; an untrusted certificate, a wrong password, a server that is down or
too slow each give one line naming the server and what to do."""

from __future__ import annotations

import imaplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import Result

from alerts.app import App
from alerts.config import load_config
from alerts.delivery import return_paths
from alerts.delivery.bounces import read_bounces
from alerts.delivery.imap import HANDLED
from alerts.errors import ConfigError, MailboxError
from alerts.testing import Faults, SmtpSink
from tests.support import make_database
from tests.support.delivery import DELIVERY, queue, rows, send, statuses
from tests.support.dovecot import PASSWORD, USER, PrivateDovecot
from tests.support.dovecot import unavailable as no_dovecot
from tests.support.postfix import PrivatePostfix, free_port
from tests.support.postfix import unavailable as no_postfix
from tests.support.sections import Stages

needs_dovecot = pytest.mark.skipif(no_dovecot() is not None, reason=no_dovecot() or "")
needs_postfix = pytest.mark.skipif(no_postfix() is not None, reason=no_postfix() or "")

PASSWORD_ENV = "ALERTS_TEST_IMAP_PASSWORD"
BOUNCE_DOMAIN = "bounces.example.org"  # under email.from's example.org: SPF and DMARC align
GONE = "reader2@residents.example.net"
COUNT = 3


@pytest.fixture(autouse=True)
def imap_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture
def dovecot(request: pytest.FixtureRequest) -> Iterator[PrivateDovecot]:
    """A private Dovecot; parametrised indirectly, with PrivateDovecot's settings."""
    with PrivateDovecot(**getattr(request, "param", {})) as server:
        yield server


def imap(port: int, ca_file: Path | None, **more: Any) -> dict[str, Any]:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password_env": PASSWORD_ENV,
        **more,
    }
    if ca_file is not None:
        settings["ca_file"] = str(ca_file)
    return settings


def subscriber_of(app: App | Stages, email: str) -> tuple[str, int]:
    [row] = [r for r in app.store.fixtures.table_rows("subscribers") if r["email"] == email]
    return row["status"], row["bounces"]


def dsn(return_path: str, recipient: str) -> bytes:
    """A delivery status notification as a smarthost writes one (RFC 3464)."""
    return (
        f"From: MAILER-DAEMON@relay.example.net\r\nTo: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n"
    ).encode()


def flags_on_server(server: PrivateDovecot, folder: str = "INBOX") -> list[bytes]:
    """Each message's FLAGS in ``folder``, as a mail client would see them."""
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", server.port, ssl_context=ssl.create_default_context(cafile=server.ca_file)
    )
    try:
        client.login(USER, PASSWORD)
        _, [count] = client.select(f'"{folder}"')
        if count == b"0":
            return []
        _, data = client.fetch("1:*", "(FLAGS)")
        return [line for line in data if isinstance(line, bytes)]
    finally:
        client.logout()


def strip_keyword(server: PrivateDovecot) -> None:
    """As a crash between counting a message and flagging it would leave it."""
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", server.port, ssl_context=ssl.create_default_context(cafile=server.ca_file)
    )
    try:
        client.login(USER, PASSWORD)
        client.select("INBOX")
        client.store("1:*", "-FLAGS.SILENT", f"({HANDLED} \\Seen)")
    finally:
        client.logout()


@pytest.fixture
def bounced_app(
    make_mailer: Callable[..., Stages], sink: SmtpSink, dovecot: PrivateDovecot, db_url: str
) -> Callable[..., tuple[Stages, str]]:
    """``bounced_app(**imap)``: an app that sent COUNT messages with their own return
    paths to ``sink``; the first recipient's DSN is in Dovecot's INBOX. Returns the app
    and the recipient."""

    def make(max_bounces: int = 1, **more: Any) -> tuple[Stages, str]:
        app = make_mailer(
            database=db_url,
            max_bounces=max_bounces,
            smtp={"host": sink.host, "port": sink.port},
            return_path={"enabled": True, "domain": BOUNCE_DOMAIN},
            bounces={"imap": imap(dovecot.port, dovecot.ca_file, **more)},
        )
        queue(app, COUNT, domain="residents.example.net")
        assert send(app).sent == COUNT
        first = sink.received[0]
        dovecot.deliver("1.dsn.test", dsn(first.mail_from, first.rcpt_tos[0]))
        return app, first.rcpt_tos[0]

    return make


def read(app: Stages) -> Any:
    return read_bounces(app.delivery, app.store, app.clock, return_paths(app.delivery, app.mail))


# -- end to end: a real Postfix writes the DSN, a real Dovecot serves it ------------------


@pytest.fixture
def refusing_sink() -> Iterator[SmtpSink]:
    with SmtpSink(faults=Faults(reject={GONE})) as server:
        yield server


@needs_postfix
@needs_dovecot
def test_a_dsn_written_by_a_real_postfix_and_read_over_imaps_suppresses_its_address(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    refusing_sink: SmtpSink,
) -> None:
    with (
        PrivatePostfix(relay_port=refusing_sink.port, bounce_domain=BOUNCE_DOMAIN) as postfix,
        PrivateDovecot(maildir=postfix.maildir, mail_user="postfix") as server,
    ):
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
                "bounces": {"imap": imap(server.port, server.ca_file)},
            },
            email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        )
        app = App(config)
        queue(app, COUNT, domain="residents.example.net")
        assert send(app).sent == COUNT  # Postfix took every message; the refusal comes later
        deadline = time.monotonic() + 30
        while not postfix.delivered() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert postfix.delivered(), f"no DSN reached the bounce Maildir: {postfix.log()}"

        result = run_cli("bounces", config=config)

        assert result.exit_code == 0, result.output + server.log()
        assert "Read 1: 1 bounces" in result.output and "1 addresses suppressed" in result.output
        assert subscriber_of(app, GONE) == ("suppressed", 1)
        assert statuses(app) == {"sent": COUNT - 1, "bounced": 1}
        [bounced] = [row for row in rows(app).values() if row["status"] == "bounced"]
        assert "5.1.1" in bounced["last_error"]
        # Flagged on the server (kept there, not deleted), so the next reading skips it.
        [flags] = flags_on_server(server)
        assert HANDLED.encode() in flags and b"\\Seen" in flags
        again = run_cli("bounces", config=config)
        assert "Read 0:" in again.output
        app.close()


# -- what is marked, and counting once ---------------------------------------------------


@needs_dovecot
def test_a_handled_message_stays_on_the_server_flagged_and_is_never_counted_twice(
    bounced_app: Callable[..., tuple[Stages, str]], dovecot: PrivateDovecot
) -> None:
    app, recipient = bounced_app(max_bounces=3)

    report = read(app)

    assert (report.read, report.bounces, report.suppressed) == (1, 1, 0)
    assert subscriber_of(app, recipient) == ("active", 1)
    assert read(app).read == 0
    # A run that counted the message but died before flagging it: read again, counted once.
    strip_keyword(dovecot)
    again = read(app)
    assert (again.read, again.bounces) == (1, 0)
    assert subscriber_of(app, recipient) == ("active", 1)
    assert HANDLED.encode() in flags_on_server(dovecot)[0]


@needs_dovecot
def test_a_person_reading_the_folder_hides_nothing_from_the_reader(
    bounced_app: Callable[..., tuple[Stages, str]], dovecot: PrivateDovecot
) -> None:
    app, recipient = bounced_app()
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", dovecot.port, ssl_context=ssl.create_default_context(cafile=dovecot.ca_file)
    )
    client.login(USER, PASSWORD)
    client.select("INBOX")
    client.fetch("1", "(RFC822)")  # opening it marks it \Seen
    client.logout()

    assert read(app).bounces == 1
    assert subscriber_of(app, recipient) == ("suppressed", 1)


@needs_dovecot
def test_with_a_processed_folder_handled_messages_are_moved_there(
    bounced_app: Callable[..., tuple[Stages, str]], dovecot: PrivateDovecot
) -> None:
    app, recipient = bounced_app(processed_folder="Processed")

    report = read(app)

    assert (report.read, report.bounces, report.suppressed) == (1, 1, 1)
    assert subscriber_of(app, recipient) == ("suppressed", 1)
    assert flags_on_server(dovecot) == []
    assert len(flags_on_server(dovecot, "Processed")) == 1
    assert read(app).read == 0


@needs_dovecot
def test_a_forged_dsn_over_imap_suppresses_nobody(
    bounced_app: Callable[..., tuple[Stages, str]], dovecot: PrivateDovecot
) -> None:
    app, recipient = bounced_app()
    victim = "reader1@residents.example.net"
    forged = "bounces+" + "a" * 42 + "@" + BOUNCE_DOMAIN
    (dovecot.maildir / "new" / "1.dsn.test").unlink()  # only the forged one
    dovecot.deliver("2.forged.test", dsn(forged, victim))

    report = read(app)

    assert (report.read, report.bounces, report.unverified, report.suppressed) == (1, 0, 1, 0)
    assert subscriber_of(app, victim) == ("active", 0)
    assert subscriber_of(app, recipient) == ("active", 0)


# -- what goes wrong: one line naming the server and what to do --------------------------


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def config_for(write_config: Callable[..., Path], settings: dict[str, Any]) -> Path:
    """A config reading the bounces from ``settings``, its database made."""
    path = write_config(delivery={"bounces": {"imap": settings}})
    make_database(path)
    return path


@needs_dovecot
@pytest.mark.parametrize("trust", ["another CA", "the system's CAs"])
def test_a_certificate_not_signed_by_the_configured_ca_is_refused(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    dovecot: PrivateDovecot,
    tmp_path: Path,
    trust: str,
) -> None:
    other = None
    if trust == "another CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
    dovecot.deliver("1.test", dsn("bounces+x@" + BOUNCE_DOMAIN, "a@example.net"))

    result = run_cli("bounces", config=config_for(write_config, imap(dovecot.port, other)))

    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith(
        f"Error: 127.0.0.1:{dovecot.port}: the server's certificate is not trusted: "
    )
    assert "set delivery.bounces.imap.ca_file to the CA that signed it" in line
    assert "Login: user=<bounces>" not in dovecot.log()  # no password went out
    assert HANDLED.encode() not in flags_on_server(dovecot)[0]


@needs_dovecot
def test_a_wrong_password_is_one_line_naming_the_server_and_the_variable(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    dovecot: PrivateDovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")

    result = run_cli(
        "bounces", config=config_for(write_config, imap(dovecot.port, dovecot.ca_file))
    )

    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: 127.0.0.1:{dovecot.port}: the server refused the login of 'bounces': "
        "[AUTHENTICATIONFAILED] Authentication failed. (check delivery.bounces.imap.username "
        f"and the password in ${PASSWORD_ENV})"
    )


#: A password as an operator in Wales or Germany might choose: not ASCII.
UTF8_PASSWORD = "Gwynfor-ŵŷ-Größe 2026"


@needs_dovecot
@pytest.mark.parametrize("dovecot", [{"password": UTF8_PASSWORD}], indirect=True)
def test_a_password_outside_ascii_logs_in_by_authenticate_plain_and_bounces_are_read(
    bounced_app: Callable[..., tuple[Stages, str]],
    dovecot: PrivateDovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, recipient = bounced_app()
    monkeypatch.setenv(PASSWORD_ENV, UTF8_PASSWORD)

    report = read(app)

    assert (report.read, report.bounces, report.suppressed) == (1, 1, 1)
    assert subscriber_of(app, recipient) == ("suppressed", 1)
    assert "Login: user=<bounces>, method=PLAIN" in dovecot.log()
    assert read(app).read == 0  # flagged on the server: the session wrote as well as read


@needs_dovecot
@pytest.mark.parametrize(
    "dovecot", [{"password": UTF8_PASSWORD, "mechanisms": "login"}], indirect=True
)
def test_a_password_outside_ascii_without_authenticate_plain_is_one_line_saying_what_to_do(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    dovecot: PrivateDovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, UTF8_PASSWORD)
    dovecot.deliver("1.test", dsn("bounces+x@" + BOUNCE_DOMAIN, "a@example.net"))

    result = run_cli(
        "bounces", config=config_for(write_config, imap(dovecot.port, dovecot.ca_file))
    )

    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: 127.0.0.1:{dovecot.port}: the user name or password of delivery.bounces.imap"
        " has characters outside ASCII, and the server offers no AUTHENTICATE PLAIN to send"
        " them in UTF-8 (enable the PLAIN mechanism on the server, or give the mailbox an"
        f" ASCII password (in ${PASSWORD_ENV}) and user name)"
    )
    assert "Login: user=<bounces>" not in dovecot.log()  # nothing was tried in the dark


def test_a_server_that_is_down_is_one_line_naming_it(
    write_config: Callable[..., Path], run_cli: Callable[..., Result]
) -> None:
    port = free_port()  # nothing listens there

    result = run_cli("bounces", config=config_for(write_config, imap(port, None)))

    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: 127.0.0.1:{port}: cannot reach the server: Connection refused (check "
        "delivery.bounces.imap.host and port, and that the server is up; the mailbox is "
        "read again at the next run)"
    )


@pytest.fixture
def trickling_server() -> Iterator[tuple[int, Path]]:
    """A TLS server (its certificate trusted) that greets a byte every 0.1 s, for ever:
    a per-read timeout never fires; only an overall deadline ends the session."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    while not stop.wait(0.1):
                        tls.sendall(b"*")
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with trustme.Blob(ca.cert_pem.bytes()).tempfile() as ca_file:
        yield listener.getsockname()[1], Path(ca_file)
    stop.set()
    thread.join(5)
    listener.close()


def test_a_server_trickling_its_greeting_is_given_up_at_the_deadline(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    trickling_server: tuple[int, Path],
) -> None:
    port, ca_file = trickling_server
    config = config_for(write_config, imap(port, ca_file, timeout=1))
    started = time.monotonic()

    result = run_cli("bounces", config=config)

    took = time.monotonic() - started
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: 127.0.0.1:{port}: no answer in time while connecting "
        "(delivery.bounces.imap.timeout is 1 s) (check that the server is up and reachable; "
        "the mailbox is read again at the next run)"
    )
    assert took < 10, took  # 1 s and the start-up, not a per-read timeout renewed for ever


# -- config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounces", "message"),
    [
        (
            {"maildir": "var/bounces", "imap": {"host": "h", "username": "u", "password_env": "P"}},
            "'delivery.bounces': give either maildir or imap (the one bounce mailbox), not both",
        ),
        (
            {"imap": {"host": "h", "username": "u"}},
            "missing required key 'delivery.bounces.imap.password_env'",
        ),
        (
            {"imap": {"host": "h", "username": "u", "password_env": "P", "folder": 'a"b'}},
            "'delivery.bounces.imap.folder'",
        ),
        (
            {"imap": {"host": "h", "username": "u\r\nA1 DELETE INBOX", "password_env": "P"}},
            "'delivery.bounces.imap.username'",
        ),
        (
            {
                "imap": {
                    "host": "h",
                    "username": "u",
                    "password_env": "P",
                    "processed_folder": "INBOX",
                }
            },
            "processed_folder must differ from folder",
        ),
    ],
)
def test_a_bad_bounce_mailbox_setting_names_its_key(
    write_config: Callable[..., Path], bounces: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write_config(delivery={"bounces": bounces}))


def test_imap_defaults_to_port_993_and_the_inbox(write_config: Callable[..., Path]) -> None:
    config = load_config(
        write_config(
            delivery={
                "bounces": {
                    "imap": {
                        "host": "imap.example.org",
                        "username": "u",
                        "password_env": PASSWORD_ENV,
                        "ca_file": "ca.pem",
                    }
                }
            }
        )
    )
    settings = config.delivery.bounces.imap
    assert settings is not None
    assert (settings.port, settings.folder, settings.processed_folder) == (993, "INBOX", None)
    assert settings.ca_file is not None and settings.ca_file.is_absolute()  # beside the config


def test_an_unset_password_variable_names_the_key(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSWORD_ENV)

    result = run_cli("bounces", config=config_for(write_config, imap(free_port(), None)))

    assert result.exit_code == 2
    assert error_line(result) == (
        f"Error: delivery.bounces.imap.password_env: environment variable {PASSWORD_ENV} is "
        f"not set (export {PASSWORD_ENV}=... (the bounce mailbox's password) before running)"
    )


def test_alerts_serve_checks_the_password_variable_before_it_starts(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSWORD_ENV)

    result = run_cli("serve", config=config_for(write_config, imap(free_port(), None)))

    assert result.exit_code == 2
    assert f"delivery.bounces.imap.password_env: environment variable {PASSWORD_ENV}" in (
        error_line(result)
    )


def test_reading_an_imap_mailbox_that_is_down_raises_a_mailbox_error(
    make_mailer: Callable[..., Stages], sqlite_url: str
) -> None:
    app = make_mailer(database=sqlite_url, bounces={"imap": imap(free_port(), None)})
    with pytest.raises(MailboxError, match="cannot reach the server"):
        read(app)
