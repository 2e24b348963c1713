"""The message each subscriber gets: built by MessageFactory from the rendered variant,
parsed back with the stdlib email package, headers and both parts checked."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.app import App
from alerts.clock import ManualClock
from alerts.digest import queue_digests
from alerts.ingest import ingest_files
from alerts.message import MessageError, MessageFactory, OutboxItem
from alerts.subscribers.mail import queue_transactional
from alerts.tokens import MANAGE, UNSUBSCRIBE, LinkSigner
from alerts.types import Frequency, Priority
from tests.support import NOW
from tests.support.digests import (
    DAY,
    HOSTILE_BODY_HTML,
    HOSTILE_TITLE,
    advisory,
    built,
    make_app,
    outbox_items,
    parse,
    parts,
    save,
    subscribe,
)

EMAIL = {
    "from": "Kent Area Alerts <alerts@alerts.example.org>",
    "reply_to": "Kent Police Comms <comms@example.org>",
    "domain": "alerts.example.org",
    "unsubscribe_mailbox": "unsubscribe@alerts.example.org",
}


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str) -> App:
    return make_app(
        write_config,
        db_url,
        email=EMAIL,
        site={"name": "Kent Area Alerts", "base_url": "https://alerts.example.org"},
    )


@pytest.fixture
def sample_app(app: App, advisory_dir: Path) -> App:
    """The sample advisory (a Medway telephone fraud), ingested just after publication."""
    published = datetime(2020, 12, 18, 14, 30, tzinfo=UTC)
    subscribe(app, "jane@example.org", ["ME4"], name="Jane Smith", at=published)
    ingest_files([advisory_dir], app.store, app.gazetteer, now=published.replace(hour=15))
    return app


def test_sample_digest_parses_back_with_every_header_and_both_parts(sample_app: App) -> None:
    app = sample_app
    queue_digests(
        app.config,
        app.store,
        app.gazetteer,
        Frequency.DAILY,
        now=datetime(2020, 12, 19, 7, 0, tzinfo=UTC),
    )
    [(item, data, message)] = built(app)
    assert message["From"] == EMAIL["from"]
    assert message["To"].addresses[0].display_name == "Jane Smith"
    assert message["To"].addresses[0].addr_spec == "jane@example.org"
    assert message["Subject"] == "1 new alert for Chatham"  # ME4 stands for Chatham
    assert message["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
    assert message["Message-ID"] == item.message_id
    assert re.fullmatch(r"<[0-9a-f]{32}@alerts\.example\.org>", item.message_id)
    assert message["Reply-To"] == EMAIL["reply_to"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == "Kent Area Alerts <alerts.alerts.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    links = LinkSigner(app.config).links(item.subscriber_id, NOW)
    assert one_click == links.one_click_url and one_click.startswith("https://")
    assert mailto == "mailto:unsubscribe@alerts.example.org?subject=unsubscribe"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(message)
    for body in (text, html):
        words = " ".join(body.split())
        assert "Safety advice after telephone fraudster poses as Kent Police officer" in words
        assert "defrauded a Medway man of money" in words
        assert "https://www.kent.police.uk/news/kent/news2/policing-news/2012/" in body
        assert links.unsubscribe_url in body.replace("&amp;", "&")
        assert links.manage_url in body.replace("&amp;", "&")
    signer = LinkSigner(app.config)
    token = links.unsubscribe_url.split("token=")[1]
    assert signer.verify(token, UNSUBSCRIBE, NOW) == item.subscriber_id
    assert signer.verify(links.manage_url.split("token=")[1], MANAGE, NOW) == item.subscriber_id
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_each_subscriber_gets_their_own_links_and_message_id(app: App) -> None:
    for name in ("ann", "bob", "cat"):
        subscribe(app, f"{name}@example.org", ["medway"])
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    messages = built(app)
    assert len({item.digest_id for item, _, _ in messages}) == 1  # one variant...
    assert len({m["Message-ID"] for _, _, m in messages}) == 3  # ...three messages
    for item, _, message in messages:
        text, html = parts(message)
        links = LinkSigner(app.config).links(item.subscriber_id, NOW)
        assert links.unsubscribe_url in text and links.unsubscribe_url in html
        assert message["To"].addresses[0].addr_spec == item.email
        assert "__unsubscribe_url_" not in text + html and "__manage_url_" not in text + html


def test_hostile_title_cannot_add_a_header_and_hostile_body_is_harmless(app: App) -> None:
    subscribe(app, "jane@example.org", ["medway"], frequency="immediate")
    subscribe(app, "daily@example.org", ["medway"], frequency="daily")
    save(
        app,
        advisory("hostile", title=HOSTILE_TITLE, body=HOSTILE_BODY_HTML, url="javascript:alert(1)"),
    )
    queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    messages = built(app)
    assert len(messages) == 2
    for _, data, message in messages:
        assert "Bcc" not in message and b"\r\nBcc:" not in data
        assert len(message.get_all("To") or ()) == 1
        text, html = parts(message)
        for marker in ("<script", "javascript:", "onerror", "tracker.example"):
            assert marker not in html, marker
        assert "javascript:" not in text
    subject = messages[0][2]["Subject"]
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("Scam warning Bcc: victim@example.org")


@pytest.mark.parametrize(
    "name",
    [
        'Jane "JJ" O\'Neil',
        "Zoë Ångström-Øster",
        "A very long display name " * 4,
        "Evil\r\nBcc: x@example.org",
        None,
    ],
)
def test_display_names_are_encoded_safely(app: App, name: str | None) -> None:
    subscribe(app, "named@example.org", ["medway"], name=name)
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    [(_, data, message)] = built(app)
    [address] = message["To"].addresses
    assert address.addr_spec == "named@example.org"
    expected = " ".join((name or "").split())[:200]
    assert address.display_name == expected
    assert "Bcc" not in message
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_forwardable_body_has_no_personal_link_but_headers_keep_one_click(app: App) -> None:
    subscribe(app, "watch@example.org", ["medway", "chatham"], forwardable=True)
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    [(item, _, message)] = built(app)
    text, html = parts(message)
    links = LinkSigner(app.config).links(item.subscriber_id, NOW)
    for body in (text, html):
        assert "token=" not in body
        assert "unsubscribe" not in body.lower()
        # The link fills in the areas on the form for whoever the digest reaches.
        assert "https://alerts.example.org/subscribe?area=chatham,medway" in body
        assert "https://alerts.example.org/areas/medway" in body
    assert links.one_click_url in str(message["List-Unsubscribe"])


def test_long_lines_get_a_transfer_encoding_that_keeps_them_within_998(app: App) -> None:
    subscribe(app, "jane@example.org", ["medway"], frequency="immediate")
    word = "x" * 1500  # no space to break at
    body = f"<p>{'Beware of the caller. ' * 120}</p><p>{word}</p><pre>{'wide ' * 300}</pre>"
    save(app, advisory("long", body=body, summary="£50 vouchers — “urgent”"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)
    [(_, data, message)] = built(app)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    text, html = parts(message)
    assert word in text and word in html
    assert "Beware of the caller. " * 20 in " ".join(html.split())
    assert ("wide " * 300).strip() in html


def test_date_carries_the_real_zone(app: App, clock: ManualClock) -> None:
    subscribe(app, "jane@example.org", ["medway"])
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    [item] = outbox_items(app)
    clock.set(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    message = parse(MessageFactory(app.config, app.store, app.now).build(item))
    assert message["Date"] == "Wed, 01 Jul 2026 09:00:00 +0100"


def test_urgent_subject_and_immediate_subject_name_the_advisory(app: App) -> None:
    subscribe(app, "now@example.org", ["medway"], frequency="immediate")
    save(app, advisory("urgent", title="Flood warning", priority=Priority.URGENT))
    save(app, advisory("plain", title="Bike thefts"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)
    assert sorted(m["Subject"] for _, _, m in built(app)) == [
        "Bike thefts",
        "Urgent: Flood warning",
    ]


def test_a_message_id_that_could_break_the_header_is_refused(app: App) -> None:
    subscribe(app, "jane@example.org", ["medway"])
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW)
    [item] = outbox_items(app)
    bad = OutboxItem(
        item.outbox_id, item.subscriber_id, item.digest_id, "<x@y>\r\nBcc: a@b", item.email
    )
    with pytest.raises(MessageError, match="Message-ID"):
        MessageFactory(app.config, app.store, app.now).build(bad)


def test_transactional_messages_are_sent_as_queued(app: App) -> None:
    subscriber = subscribe(app, "jane@example.org", ["medway"])
    raw = "From: a@example.org\nTo: jane@example.org\nSubject: Confirm\nMessage-ID: <c@example.org>\n\nConfirm please.\n"
    queue_transactional(
        app.store,
        subscriber.id,
        "Confirm",
        "Confirm please.",
        "<p>Confirm</p>",
        NOW,
        message_id="<c@example.org>",
        raw=raw,
    )
    [(_, data, message)] = built(app)
    assert message["Subject"] == "Confirm"
    assert data.endswith(b"Confirm please.\r\n")


def test_factory_reuses_the_prepared_digest(app: App) -> None:
    for name in ("ann", "bob"):
        subscribe(app, f"{name}@example.org", ["medway"])
    save(app, advisory("news"))
    queue_digests(app.config, app.store, app.gazetteer, Frequency.DAILY, now=NOW + DAY)
    factory = MessageFactory(app.config, app.store, app.now)
    first, second = outbox_items(app)
    factory.build(first)
    prepared = factory.prepared(first.digest_id)
    factory.build(second)
    assert factory.prepared(second.digest_id) is prepared


def test_hostile_advisory_file_through_real_ingest_gives_a_safe_message(
    app: App, tmp_path: Path
) -> None:
    from tests.support.advisory_files import write_hostile_advisory

    folder = tmp_path / "hostile"
    folder.mkdir()
    write_hostile_advisory(folder)
    subscribe(
        app,
        "dover@example.org",
        ["dover"],
        frequency="immediate",
        at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    report = ingest_files(
        [folder], app.store, app.gazetteer, now=datetime(2026, 11, 20, 10, tzinfo=UTC)
    )
    assert report.new
    queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW)
    [(_, data, message)] = built(app)
    assert "\n" not in message["Subject"] and "\x07" not in message["Subject"]
    text, html = parts(message)
    for marker in ("<script", "<iframe", "onerror=", "onclick=", "\x01", "\x07", "\x1b"):
        assert marker not in html, marker
    # The text part is plain text: a title's markup shows as written, and runs nowhere.
    for marker in ("\x01", "\x07", "\x1b"):
        assert marker not in text
    # Markdown leaves a javascript: link as inert text; no attribute ever holds one.
    assert not re.search(r"(?:href|src)\s*=\s*[\"']?\s*javascript:", html, re.I)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
