"""DKIM: messages are signed relaxed/relaxed over the headers receivers rely on,
List-Unsubscribe-Post included, and the signature verifies against the test's own key.

``dkim.verify`` looks the public key up in DNS; the test hands it a ``dnsfunc`` that
answers with the TXT record the domain would publish. That is the record, not a mock
of the network: everything else (signing, canonicalisation, verification) is real.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.config import load_config
from alerts.delivery import send_pending
from alerts.delivery.dkim import DkimSigner
from alerts.delivery.smtp import SmtpConnection
from alerts.delivery.workers import BUILD_NICENESS
from alerts.digest import queue_digests
from alerts.errors import ConfigError
from alerts.testing import SmtpSink
from alerts.types import Frequency
from tests.support import NOW
from tests.support.delivery import queue
from tests.support.digests import advisory, save, subscribe
from tests.support.sections import Stages
from tests.support.seeding import PlainMessageFactory

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
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
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


def signed_app(
    make_mailer: Callable[..., Stages], sink: SmtpSink, key_file: Path, sqlite_url: str
) -> Stages:
    return make_mailer(
        database=sqlite_url,
        smtp={"host": sink.host, "port": sink.port},
        dkim={"domain": DOMAIN, "selector": SELECTOR, "key_file": str(key_file)},
    )


def test_sent_messages_carry_a_signature_that_verifies_against_the_published_key(
    make_mailer, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_mailer, sink, key_file, sqlite_url)
    queue(app, 3)

    send_pending(
        app.delivery,
        app.mail,
        app.store,
        app.clock,
        now=NOW,
        builder=PlainMessageFactory(app.store),
    )

    assert len(sink.received) == 3
    for got in sink.received:
        assert got.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(got.data, dnsfunc=dns_for(key))


def test_the_signature_is_relaxed_relaxed_and_covers_both_list_unsubscribe_headers(
    make_mailer, sink: SmtpSink, key_file: Path, sqlite_url: str
) -> None:
    app = signed_app(make_mailer, sink, key_file, sqlite_url)
    queue(app, 1)

    send_pending(
        app.delivery,
        app.mail,
        app.store,
        app.clock,
        now=NOW,
        builder=PlainMessageFactory(app.store),
    )

    header = sink.received[0].message()["DKIM-Signature"]
    tags = {
        k.strip(): v
        for k, v in (t.split("=", 1) for t in re.sub(r"\s+", "", header).split(";") if t)
    }
    assert tags["c"] == "relaxed/relaxed"
    assert (tags["d"], tags["s"]) == (DOMAIN, SELECTOR)
    signed = tags["h"].lower().split(":")
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    } <= set(signed)


def test_a_changed_one_click_header_breaks_the_signature(
    make_mailer, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_mailer, sink, key_file, sqlite_url)
    queue(app, 1)
    send_pending(
        app.delivery,
        app.mail,
        app.store,
        app.clock,
        now=NOW,
        builder=PlainMessageFactory(app.store),
    )

    data = sink.received[0].data
    tampered = data.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x=y"
    )

    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=dns_for(key))


def test_a_digest_built_by_the_real_message_factory_verifies_after_sending(
    make_mailer, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    app = signed_app(make_mailer, sink, key_file, sqlite_url)
    save(app, advisory("courier-fraud", areas=("medway",)))
    subscribe(app, "ann@example.org", ["medway"], frequency=Frequency.IMMEDIATE)
    queue_digests(app.mail, app.digests, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)

    assert send_pending(app.delivery, app.mail, app.store, app.clock, now=NOW).sent == 1

    [got] = sink.received
    assert dkim.verify(got.data, dnsfunc=dns_for(key))
    assert b"list-unsubscribe-post" in got.data.split(b"\r\n\r\n")[0].lower().split(b"bh=")[0]


def test_a_signed_message_verifies_with_the_signer_alone(
    key_file: Path, key: rsa.RSAPrivateKey
) -> None:
    from alerts.config import DkimConfig

    signer = DkimSigner.from_config(
        DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=key_file), NOW.timestamp
    )
    message = (
        b"From: Kent Area Alerts <alerts@example.org>\r\nTo: ann@example.org\r\nSubject: Alerts\r\n"
        b"Message-ID: <1@example.org>\r\nList-Unsubscribe: <https://alerts.example.org/u/x>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nBody.\r\n"
    )

    assert dkim.verify(signer.sign(message), dnsfunc=dns_for(key))


def test_a_key_file_that_is_missing_or_not_a_key_is_a_config_error_at_start(tmp_path: Path) -> None:
    from alerts.config import DkimConfig

    with pytest.raises(ConfigError, match=r"delivery\.dkim\.key_file"):
        DkimSigner.from_config(
            DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=tmp_path / "none.pem"),
            NOW.timestamp,
        )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not an RSA private key in PEM form"):
        DkimSigner.from_config(
            DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=junk), NOW.timestamp
        )


# -- OpenSSL signing, checked by dkimpy's verifier ------------------------------------------

ED_SELECTOR = "alerts2026ed"


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def dns_for_both(
    key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> Callable[..., bytes | None]:
    """The two TXT records: RSA under SELECTOR, Ed25519 (the raw 32 bytes, RFC 8463) under ED_SELECTOR."""
    rsa_record = dns_for(key)
    raw = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    ed_record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        if name == f"{ED_SELECTOR}._domainkey.{DOMAIN}.".encode():
            return ed_record
        return rsa_record(name, timeout)

    return dnsfunc


def test_an_ed25519_key_in_the_config_adds_a_second_signature_and_both_verify(
    make_mailer: Callable[..., Stages],
    sink: SmtpSink,
    key_file: Path,
    key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    app = make_mailer(
        database=sqlite_url,
        smtp={"host": sink.host, "port": sink.port},
        dkim={
            "domain": DOMAIN,
            "selector": SELECTOR,
            "key_file": str(key_file),
            "ed25519_selector": ED_SELECTOR,
            "ed25519_key_file": str(pem(ed_key, tmp_path / "ed.pem")),
        },
    )
    queue(app, 2)

    send_pending(
        app.delivery,
        app.mail,
        app.store,
        app.clock,
        now=NOW,
        builder=PlainMessageFactory(app.store),
    )

    assert len(sink.received) == 2
    for got in sink.received:
        signatures = got.message().get_all("DKIM-Signature")
        assert [re.search(r"a=([\w-]+)", s).group(1) for s in signatures] == [  # type: ignore[union-attr]
            "rsa-sha256",
            "ed25519-sha256",
        ]
        checker = dkim.DKIM(got.data)
        assert checker.verify(idx=0, dnsfunc=dns_for_both(key, ed_key))
        assert checker.verify(idx=1, dnsfunc=dns_for_both(key, ed_key))


def test_an_ed25519_selector_without_its_key_file_is_a_config_error(
    write_config: Callable[..., Path], key_file: Path
) -> None:
    config = write_config(
        delivery={
            "dkim": {
                "domain": DOMAIN,
                "selector": SELECTOR,
                "key_file": str(key_file),
                "ed25519_selector": "x",
            }
        }
    )

    with pytest.raises(ConfigError, match="needs both ed25519_selector and ed25519_key_file"):
        load_config(config)


def test_keys_of_the_wrong_kind_or_too_short_are_refused_at_start(
    key_file: Path, ed_key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    from alerts.config import DkimConfig

    ed_file = pem(ed_key, tmp_path / "ed.pem")
    with pytest.raises(ConfigError, match="is not an RSA private key"):
        DkimSigner.from_config(
            DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=ed_file), NOW.timestamp
        )
    with pytest.raises(ConfigError, match="is not an Ed25519 private key"):
        DkimSigner.from_config(
            DkimConfig(
                domain=DOMAIN,
                selector=SELECTOR,
                key_file=key_file,
                ed25519_selector="ed",
                ed25519_key_file=key_file,
            ),
            NOW.timestamp,
        )
    short = tmp_path / "short.pem"
    short.write_text(SHORT_RSA_KEY)  # cryptography will not make one this short
    with pytest.raises(ConfigError, match="512-bit RSA key"):
        DkimSigner.from_config(
            DkimConfig(domain=DOMAIN, selector=SELECTOR, key_file=short), NOW.timestamp
        )


SHORT_RSA_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAvt+uXTBLTLDJD8KI
AmOTMCbxK8UX93XWQfY0877KchaIK3ddj+FO+VCu0F6GlJRBEO2J4/O0mva0wQ+G
AJxzfwIDAQABAkBG23C2RXxenu40/IlTIbX9VSeIkSVBhywf1o93wOcUjKXN8kFh
c219q01s3MHsm0TJhXgNBYnrHcfhV1gGdKopAiEA9LC0RFAxedQUtxHOITTU+DMy
wYf/omJuuLUHlu0pL+MCIQDHsjGPQBQEZo9DIsRjt9lzIwxzoKM3ryy2jj5czk+I
tQIhAMTfsAsO4t/87bXmU42QLpKMzxe7zsjenetrbHHY27y1AiBTHXKNKeFq93jX
O4g77NBfoI3VLl3gllNo5AlGvUPTJQIhAMUZYLpiu5Z+0wsStEQOTiJDyuGivZkY
znH3oymBK3xi
-----END PRIVATE KEY-----
"""

WSP = st.sampled_from([" ", "\t", "  ", " \t "])
WORD = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=12,
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Messages whose white space the relaxed canonicalisations must see through: runs of
    spaces and tabs, folded headers, trailing white space, empty lines at the end."""

    def value() -> str:
        words = draw(st.lists(WORD, min_size=1, max_size=6))
        text = ""
        for word in words:
            text += draw(WSP) + word
            if draw(st.booleans()) and draw(st.booleans()):
                text += "\r\n" + draw(WSP)  # a fold
        return text + draw(st.sampled_from(["", " ", "\t"]))

    head = [
        f"From:{value()}",
        f"To:{value()}",
        f"Subject:{value()}",
        f"message-ID:{value()}",
        f"X-Not-Signed:{value()}",
        f"List-Unsubscribe:{value()}",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    if draw(st.booleans()):
        head.append(f"To:{value()}")  # a header twice: both signed, the last first
    lines = [
        draw(st.sampled_from(["", " ", "\t"])).join(draw(st.lists(WORD, max_size=5)))
        + draw(st.sampled_from(["", " ", "\t "]))
        for _ in range(draw(st.integers(0, 6)))
    ]
    # The body ends with CRLF (or is empty), as the workers and SMTP make every message.
    body = "".join(line + "\r\n" for line in lines) + draw(
        st.sampled_from(["", "\r\n", "\r\n \r\n"])
    )
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=messages())
def test_any_message_signed_with_openssl_verifies_with_dkimpy(
    message: bytes, key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    signer = DkimSigner(
        DOMAIN, SELECTOR, key, clock=NOW.timestamp, ed25519_key=(ED_SELECTOR, ed_key)
    )

    signed = signer.sign(message)

    checker = dkim.DKIM(signed)
    assert checker.verify(idx=0, dnsfunc=dns_for_both(key, ed_key))
    assert checker.verify(idx=1, dnsfunc=dns_for_both(key, ed_key))


def test_a_changed_body_breaks_the_signature_but_added_trailing_white_space_does_not(
    key: rsa.RSAPrivateKey,
) -> None:
    message = b"From: a@example.org\r\nSubject: Hi\r\n\r\nSome  text.\r\nMore.\r\n"
    signed = DkimSigner(DOMAIN, SELECTOR, key, clock=NOW.timestamp).sign(message)

    assert dkim.verify(signed.replace(b"More.", b"More.  \t") + b"\r\n\r\n", dnsfunc=dns_for(key))
    assert not dkim.verify(signed.replace(b"More.", b"Less."), dnsfunc=dns_for(key))


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="niceness is per thread on Linux only"
)
def test_messages_are_signed_at_a_lower_priority_than_they_are_sent(
    make_mailer, sink: SmtpSink, key_file: Path, key: rsa.RSAPrivateKey, sqlite_url: str
) -> None:
    """Signing runs in build threads niced below the sending threads, so that on a busy
    core a relay's reply is answered before the next signature is made (fanout.py --dkim:
    1.32x -> 1.17x the unsigned time). The niceness is read in the thread that signs
    and the thread that sends, around the real signer and connection."""
    app = signed_app(make_mailer, sink, key_file, sqlite_url)
    queue(app, 4)
    seen: dict[str, set[int]] = {"sign": set(), "send": set()}

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    real_sign, real_send = DkimSigner.sign, SmtpConnection.send

    def sign(self: DkimSigner, message: bytes) -> bytes:
        seen["sign"].add(nice())
        return real_sign(self, message)

    def send(self: SmtpConnection, envelope_from: str, recipient: str, message: bytes) -> None:
        seen["send"].add(nice())
        real_send(self, envelope_from, recipient, message)

    base = nice()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DkimSigner, "sign", sign)
        patch.setattr(SmtpConnection, "send", send)
        report = send_pending(
            app.delivery,
            app.mail,
            app.store,
            app.clock,
            now=NOW,
            builder=PlainMessageFactory(app.store),
        )
    assert report.sent == 4
    assert seen == {"sign": {min(base + BUILD_NICENESS, 19)}, "send": {base}}
    assert all(dkim.verify(got.data, dnsfunc=dns_for(key)) for got in sink.received)
    # The process itself (and this thread) kept its priority.
    assert nice() == base
