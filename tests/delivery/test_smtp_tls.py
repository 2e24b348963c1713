"""TLS and AUTH against a real aiosmtpd server with a certificate made by the test:
the relay's certificate is verified (against ca_file), credentials go only over TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from alerts.delivery.base import RelayError
from alerts.errors import ConfigError
from alerts.testing import DROP, SmtpSink
from tests.support.delivery import queue, rows, send, statuses
from tests.support.sections import Stages

PASSWORD_ENV = "ALERTS_TEST_SMTP_PASSWORD"
USERS = {"alerts": "correct horse battery staple"}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def tls_sink(server_context: ssl.SSLContext) -> Iterator[SmtpSink]:
    with SmtpSink(tls_context=server_context, require_starttls=True, users=USERS) as server:
        yield server


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, USERS["alerts"])


def relay(sink: SmtpSink, **settings: object) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "starttls",
        "username": "alerts",
        "password_env": PASSWORD_ENV,
        **settings,
    }


def test_starttls_and_auth_deliver_over_a_verified_connection(
    make_mailer, tls_sink: SmtpSink, ca_file: Path, sqlite_url: str
) -> None:
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    ids = queue(app, 3)

    report = send(app)

    assert report.sent == 3
    assert sorted(tls_sink.message_ids()) == sorted(ids)
    assert all(r.tls and r.user == "alerts" for r in tls_sink.received)


def test_implicit_tls_delivers_with_the_certificate_verified(
    make_mailer, server_context: ssl.SSLContext, ca_file: Path, sqlite_url: str
) -> None:
    with SmtpSink(tls_context=server_context, implicit_tls=True, users=USERS) as sink:
        app = make_mailer(
            database=sqlite_url, smtp=relay(sink, security="ssl", ca_file=str(ca_file))
        )
        queue(app, 2)

        assert send(app).sent == 2
        assert all(r.tls for r in sink.received)


def test_a_certificate_not_signed_by_a_trusted_ca_stops_the_run_and_nothing_is_lost(
    make_mailer, tls_sink: SmtpSink, sqlite_url: str
) -> None:
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink))  # no ca_file: the system's CAs
    queue(app, 4)

    with pytest.raises(RelayError, match="certificate is not trusted") as caught:
        send(app)

    assert "ca_file" in str(caught.value)
    assert statuses(app) == {"pending": 4}
    assert all(row["attempts"] == 0 and row["claimed_by"] is None for row in rows(app).values())
    assert tls_sink.received == []


def test_a_certificate_for_another_host_name_is_refused(
    make_mailer, ca: trustme.CA, ca_file: Path, sqlite_url: str
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("relay.example.org").configure_cert(context)
    with SmtpSink(tls_context=context, require_starttls=True, users=USERS) as sink:
        app = make_mailer(database=sqlite_url, smtp=relay(sink, ca_file=str(ca_file)))
        queue(app, 1)

        with pytest.raises(RelayError, match="not trusted"):
            send(app)
        assert sink.received == []


def test_refused_credentials_stop_the_run_with_the_fix_named(
    make_mailer, tls_sink: SmtpSink, ca_file: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    queue(app, 2)

    with pytest.raises(RelayError, match="refused the credentials") as caught:
        send(app)

    assert "password_env" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert statuses(app) == {"pending": 2}


def test_credentials_are_not_sent_when_the_relay_offers_no_starttls(
    make_mailer, sqlite_url: str
) -> None:
    with SmtpSink() as plain:  # no TLS at all
        app = make_mailer(database=sqlite_url, smtp=relay(plain))
        queue(app, 1)

        with pytest.raises(RelayError, match="does not offer STARTTLS"):
            send(app)
        assert plain.received == []
    assert statuses(app) == {"pending": 1}


def test_a_config_with_credentials_over_plain_text_is_refused_at_start(
    run_cli, write_config, tmp_path: Path
) -> None:
    config = write_config(
        delivery={
            "backend": "smtp",
            "smtp": {
                "host": "127.0.0.1",
                "security": "none",
                "username": "alerts",
                "password_env": PASSWORD_ENV,
            },
        }
    )

    result = run_cli("send", config=config)

    assert result.exit_code == 2
    assert "refusing to send credentials in clear" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_password_variable_is_named_before_anything_is_sent(
    make_mailer, tls_sink: SmtpSink, ca_file: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV)
    app: Stages = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    queue(app, 1)

    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        send(app)
    assert tls_sink.connections == 0


def test_an_unreadable_ca_file_is_a_config_error(
    make_mailer, tls_sink: SmtpSink, tmp_path: Path, sqlite_url: str
) -> None:
    app = make_mailer(
        database=sqlite_url, smtp=relay(tls_sink, ca_file=str(tmp_path / "missing.pem"))
    )

    with pytest.raises(ConfigError, match="ca_file"):
        send(app)


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("starttls", "454 4.7.0 TLS not available due to temporary reason"),
        ("auth", "454 4.7.0 try again later"),
    ],
)
def test_a_temporary_refusal_of_starttls_or_auth_defers_one_message_and_the_next_session_delivers(
    make_mailer, tls_sink: SmtpSink, ca_file: Path, sqlite_url: str, stage: str, reply: str
) -> None:
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    ids = queue(app, 4)
    # smtplib tries each mechanism the relay offers (PLAIN, then LOGIN): refuse both.
    tls_sink.faults.inject(stage, reply, times=2 if stage == "auth" else 1)

    report = send(app, workers=1)

    assert (report.sent, report.deferred, report.failed) == (3, 1, 0)
    row = rows(app)[ids[0]]
    assert (row["status"], row["attempts"]) == (
        "pending",
        0,
    )  # the relay's trouble, not the message's
    assert f"answered {stage.upper()} with {reply}" in row["last_error"]
    assert sorted(tls_sink.message_ids()) == sorted(ids[1:])


@pytest.mark.parametrize(
    ("stage", "reply", "says"),
    [
        ("starttls", "501 5.5.4 Syntax error", "refused the session at STARTTLS: 501 5.5.4"),
        (
            "auth",
            "535 5.7.8 Authentication credentials invalid",
            "refused the credentials: 535 5.7.8",
        ),
        (
            "auth",
            "534 5.7.9 Authentication mechanism is too weak",
            "refused the credentials: 534 5.7.9",
        ),
    ],
)
def test_a_permanent_refusal_of_starttls_or_auth_stops_the_run_naming_it_and_nothing_is_lost(
    make_mailer,
    tls_sink: SmtpSink,
    ca_file: Path,
    sqlite_url: str,
    stage: str,
    reply: str,
    says: str,
) -> None:
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    queue(app, 3)
    tls_sink.faults.inject(stage, reply)

    with pytest.raises(RelayError, match=says):
        send(app)

    assert statuses(app) == {"pending": 3}
    assert all(row["attempts"] == 0 and row["claimed_by"] is None for row in rows(app).values())
    assert tls_sink.received == []


def test_a_relay_that_drops_the_connection_at_starttls_is_unavailable_not_misconfigured(
    make_mailer, tls_sink: SmtpSink, ca_file: Path, sqlite_url: str
) -> None:
    app = make_mailer(database=sqlite_url, smtp=relay(tls_sink, ca_file=str(ca_file)))
    ids = queue(app, 3)
    tls_sink.faults.inject("starttls", DROP, times=1)

    report = send(app, workers=1)

    assert (report.sent, report.deferred) == (2, 1)
    assert "connection lost at STARTTLS" in rows(app)[ids[0]]["last_error"]


def test_a_tls_handshake_that_fails_stops_the_run_naming_tls(
    make_mailer, ca_file: Path, sqlite_url: str
) -> None:
    with SmtpSink() as plain:  # speaks plain SMTP where the config expects TLS at once
        app = make_mailer(
            database=sqlite_url, smtp=relay(plain, security="ssl", ca_file=str(ca_file))
        )
        queue(app, 2)

        with pytest.raises(RelayError, match="TLS failed at connect") as caught:
            send(app)

    assert "delivery.smtp.security" in str(caught.value)
    assert statuses(app) == {"pending": 2}
