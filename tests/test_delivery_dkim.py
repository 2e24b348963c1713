"""DKIM: messages are signed relaxed/relaxed over the headers receivers rely on,
List-Unsubscribe-Post included, and the signature verifies against the test's own key.

``dkim.verify`` looks the public key up in DNS; the test hands it a ``dnsfunc`` that
answers with the TXT record the domain would publish. That is the record, not a mock
of the network: everything else (signing, canonicalisation, verification) is real.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from alerts.app import App
from alerts.delivery import send_pending
from alerts.delivery.dkim import DkimSigner
from alerts.digest import queue_digests
from alerts.errors import ConfigError
from alerts.testing import PlainMessageFactory, SmtpSink
from alerts.types import Frequency
from tests.conftest import NOW
from tests.delivery_fixtures import *  # noqa: F403
from tests.delivery_fixtures import queue
from tests.digest_support import advisory, save, subscribe

SELECTOR = "alerts2026"
DOMAIN = "example.org"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(key: rsa.RSAPrivateKey, tmp_path: Path) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def dns_for(key: rsa.RSAPrivateKey) -> Callable[..., bytes | None]:
    """The TXT record ``<selector>._domainkey.<domain>`` would hold, as dkimpy asks for it."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return dnsfunc


def signed_app(make_app: Callable[..., App], sink: SmtpSink, key_file: Path, sqlite_url: str) -> App:
    return make_app(
        database=sqlite_url,
        smtp={"host": sink.host, "port": sink.port},
        dkim={"domain": DOMAIN, "selector": SELECTOR, "key_file": str(key_file)},
    )


def test_sent_messages_carry_a_signature_that_verifies_against_the_published_key(
    make_app, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_app, sink, key_file, sqlite_url)
    queue(app, 3)

    send_pending(app.config, app.store, now=NOW, builder=PlainMessageFactory(app.store.engine))

    assert len(sink.received) == 3
    for got in sink.received:
        assert got.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(got.data, dnsfunc=dns_for(key))


def test_the_signature_is_relaxed_relaxed_and_covers_both_list_unsubscribe_headers(
    make_app, sink: SmtpSink, key_file: Path, sqlite_url: str
) -> None:
    app = signed_app(make_app, sink, key_file, sqlite_url)
    queue(app, 1)

    send_pending(app.config, app.store, now=NOW, builder=PlainMessageFactory(app.store.engine))

    header = sink.received[0].message()["DKIM-Signature"]
    tags = {k.strip(): v for k, v in (t.split("=", 1) for t in re.sub(r"\s+", "", header).split(";") if t)}
    assert tags["c"] == "relaxed/relaxed"
    assert (tags["d"], tags["s"]) == (DOMAIN, SELECTOR)
    signed = tags["h"].lower().split(":")
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed)


def test_a_changed_one_click_header_breaks_the_signature(
    make_app, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_app, sink, key_file, sqlite_url)
    queue(app, 1)
    send_pending(app.config, app.store, now=NOW, builder=PlainMessageFactory(app.store.engine))

    data = sink.received[0].data
    tampered = data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x=y")

    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=dns_for(key))


def test_a_digest_built_by_the_real_message_factory_verifies_after_sending(
    make_app, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_app, sink, key_file, sqlite_url)
    save(app, advisory("courier-fraud", areas=("medway",)))
    subscribe(app, "ann@example.org", ["medway"], frequency=Frequency.IMMEDIATE)
    queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)

    assert send_pending(app.config, app.store, now=NOW).sent == 1

    [got] = sink.received
    assert dkim.verify(got.data, dnsfunc=dns_for(key))
    assert b"list-unsubscribe-post" in got.data.split(b"\r\n\r\n")[0].lower().split(b"bh=")[0]


def test_a_signed_message_verifies_with_the_signer_alone(key_file: Path, key: rsa.RSAPrivateKey) -> None:
    from alerts.config import DkimConfig

    signer = DkimSigner.from_config(DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=key_file))
    message = (
        b"From: Kent Area Alerts <alerts@example.org>\r\nTo: ann@example.org\r\nSubject: Alerts\r\n"
        b"Message-ID: <1@example.org>\r\nList-Unsubscribe: <https://alerts.example.org/u/x>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nBody.\r\n"
    )

    assert dkim.verify(signer.sign(message), dnsfunc=dns_for(key))


def test_a_key_file_that_is_missing_or_not_a_key_is_a_config_error_at_start(tmp_path: Path) -> None:
    from alerts.config import DkimConfig

    with pytest.raises(ConfigError, match=r"delivery\.dkim\.key_file"):
        DkimSigner.from_config(DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=tmp_path / "none.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not an RSA private key"):
        DkimSigner.from_config(DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=junk))
