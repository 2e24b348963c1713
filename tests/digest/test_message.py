"""The message each subscriber gets: built by MessageFactory from the rendered variant,
parsed back with the stdlib email package, headers and both parts checked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.config import EmailConfig, SiteConfig
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
    outbox_items,
    parse,
    parts,
    save,
    subscribe,
)
from tests.support.sections import Stages, make_stages

EMAIL = {
    "from": "Kent Area Alerts <alerts@alerts.example.org>",
    "reply_to": "Kent Police Comms <comms@example.org>",
    "domain": "alerts.example.org",
    "unsubscribe_mailbox": "unsubscribe@alerts.example.org",
}


@pytest.fixture
def stages(
    tmp_path: Path, db_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> Iterator[Stages]:
    made = make_stages(
        tmp_path,
        db_url,
        clock,
        gazetteer,
        email=EmailConfig.model_validate(EMAIL),
        site=SiteConfig(name="Kent Area Alerts", base_url="https://alerts.example.org"),
    )
    yield made
    made.close()


@pytest.fixture
def sample_stages(stages: Stages, advisory_dir: Path) -> Stages:
    """The sample advisory (a Medway telephone fraud), ingested just after publication."""
    published = datetime(2020, 12, 18, 14, 30, tzinfo=UTC)
    subscribe(stages, "jane@example.org", ["ME4"], name="Jane Smith", at=published)
    ingest_files([advisory_dir], stages.store, stages.gazetteer, now=published.replace(hour=15))
    return stages


def test_sample_digest_parses_back_with_every_header_and_both_parts(sample_stages: Stages) -> None:
    stages = sample_stages
    queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=datetime(2020, 12, 19, 7, 0, tzinfo=UTC),
    )
    [(item, data, message)] = built(stages)
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
    links = LinkSigner(stages.mail.site.base_url, stages.mail.security).links(
        item.subscriber_id, NOW
    )
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
    signer = LinkSigner(stages.mail.site.base_url, stages.mail.security)
    token = links.unsubscribe_url.split("token=")[1]
    assert signer.verify(token, UNSUBSCRIBE, NOW) == item.subscriber_id
    assert signer.verify(links.manage_url.split("token=")[1], MANAGE, NOW) == item.subscriber_id
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_each_subscriber_gets_their_own_links_and_message_id(stages: Stages) -> None:
    for name in ("ann", "bob", "cat"):
        subscribe(stages, f"{name}@example.org", ["medway"])
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    messages = built(stages)
    assert len({item.digest_id for item, _, _ in messages}) == 1  # one variant...
    assert len({m["Message-ID"] for _, _, m in messages}) == 3  # ...three messages
    for item, _, message in messages:
        text, html = parts(message)
        links = LinkSigner(stages.mail.site.base_url, stages.mail.security).links(
            item.subscriber_id, NOW
        )
        assert links.unsubscribe_url in text and links.unsubscribe_url in html
        assert message["To"].addresses[0].addr_spec == item.email
        assert "__unsubscribe_url_" not in text + html and "__manage_url_" not in text + html


def test_hostile_title_cannot_add_a_header_and_hostile_body_is_harmless(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"], frequency="immediate")
    subscribe(stages, "daily@example.org", ["medway"], frequency="daily")
    save(
        stages,
        advisory("hostile", title=HOSTILE_TITLE, body=HOSTILE_BODY_HTML, url="javascript:alert(1)"),
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    messages = built(stages)
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
def test_display_names_are_encoded_safely(stages: Stages, name: str | None) -> None:
    subscribe(stages, "named@example.org", ["medway"], name=name)
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, data, message)] = built(stages)
    [address] = message["To"].addresses
    assert address.addr_spec == "named@example.org"
    expected = " ".join((name or "").split())[:200]
    assert address.display_name == expected
    assert "Bcc" not in message
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_forwardable_body_has_no_personal_link_but_headers_keep_one_click(stages: Stages) -> None:
    subscribe(stages, "watch@example.org", ["medway", "chatham"], forwardable=True)
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(item, _, message)] = built(stages)
    text, html = parts(message)
    links = LinkSigner(stages.mail.site.base_url, stages.mail.security).links(
        item.subscriber_id, NOW
    )
    for body in (text, html):
        assert "token=" not in body
        assert "unsubscribe" not in body.lower()
        # The link fills in the areas on the form for whoever the digest reaches.
        assert "https://alerts.example.org/subscribe?area=chatham,medway" in body
        assert "https://alerts.example.org/areas/medway" in body
    assert links.one_click_url in str(message["List-Unsubscribe"])


def test_long_lines_get_a_transfer_encoding_that_keeps_them_within_998(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"], frequency="immediate")
    word = "x" * 1500  # no space to break at
    body = f"<p>{'Beware of the caller. ' * 120}</p><p>{word}</p><pre>{'wide ' * 300}</pre>"
    save(stages, advisory("long", body=body, summary="£50 vouchers — “urgent”"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, data, message)] = built(stages)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    text, html = parts(message)
    assert word in text and word in html
    assert "Beware of the caller. " * 20 in " ".join(html.split())
    assert ("wide " * 300).strip() in html


def test_date_carries_the_real_zone(stages: Stages, clock: ManualClock) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [item] = outbox_items(stages)
    clock.set(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))
    message = parse(MessageFactory(stages.mail, stages.store, stages.now).build(item))
    assert message["Date"] == "Wed, 01 Jul 2026 09:00:00 +0100"


def test_urgent_subject_and_immediate_subject_name_the_advisory(stages: Stages) -> None:
    subscribe(stages, "now@example.org", ["medway"], frequency="immediate")
    save(stages, advisory("urgent", title="Flood warning", priority=Priority.URGENT))
    save(stages, advisory("plain", title="Bike thefts"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    assert sorted(m["Subject"] for _, _, m in built(stages)) == [
        "Bike thefts",
        "Urgent: Flood warning",
    ]


def test_a_message_id_that_could_break_the_header_is_refused(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"])
    save(stages, advisory("news"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [item] = outbox_items(stages)
    bad = OutboxItem(
        item.outbox_id, item.subscriber_id, item.digest_id, "<x@y>\r\nBcc: a@b", item.email
    )
    with pytest.raises(MessageError, match="Message-ID"):
        MessageFactory(stages.mail, stages.store, stages.now).build(bad)


def test_transactional_messages_are_sent_as_queued(stages: Stages) -> None:
    subscriber = subscribe(stages, "jane@example.org", ["medway"])
    raw = "From: a@example.org\nTo: jane@example.org\nSubject: Confirm\nMessage-ID: <c@example.org>\n\nConfirm please.\n"
    queue_transactional(
        stages.store,
        subscriber.id,
        "Confirm",
        "Confirm please.",
        "<p>Confirm</p>",
        NOW,
        message_id="<c@example.org>",
        raw=raw,
    )
    [(_, data, message)] = built(stages)
    assert message["Subject"] == "Confirm"
    assert data.endswith(b"Confirm please.\r\n")


def test_factory_reuses_the_prepared_digest(stages: Stages) -> None:
    for name in ("ann", "bob"):
        subscribe(stages, f"{name}@example.org", ["medway"])
    save(stages, advisory("news"))
    queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=NOW + DAY,
    )
    factory = MessageFactory(stages.mail, stages.store, stages.now)
    first, second = outbox_items(stages)
    factory.build(first)
    prepared = factory.prepared(first.digest_id)
    factory.build(second)
    assert factory.prepared(second.digest_id) is prepared


def test_hostile_advisory_file_through_real_ingest_gives_a_safe_message(
    stages: Stages, tmp_path: Path
) -> None:
    from tests.support.advisory_files import write_hostile_advisory

    folder = tmp_path / "hostile"
    folder.mkdir()
    write_hostile_advisory(folder)
    subscribe(
        stages,
        "dover@example.org",
        ["dover"],
        frequency="immediate",
        at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    report = ingest_files(
        [folder], stages.store, stages.gazetteer, now=datetime(2026, 11, 20, 10, tzinfo=UTC)
    )
    assert report.new
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, data, message)] = built(stages)
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
