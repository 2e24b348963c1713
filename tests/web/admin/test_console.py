"""The console's pages as an editor and an admin use them: the inbox with each
decision and its reasons, retag, compose-preview-send, the outbox, subscribers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.sources import SourcePoll
from alerts.store.users import Role
from alerts.subscribers import make_subscription
from alerts.web import create_app
from tests.conftest import NOW
from tests.support.console import BASE, add_user, csrf_of, hidden_fields, signed_in
from tests.support.seeding import seed_subscribers
from tests.support.tables import outbox_rows

#: Subscribers who signed up before the advisory is written.
EARLIER = NOW - timedelta(hours=1)


@pytest.fixture
def editor(app: App) -> TestClient:
    add_user(app, "jo", Role.EDITOR)
    return signed_in(TestClient(create_app(app), base_url=BASE), "jo")


@pytest.fixture
def admin(app: App) -> TestClient:
    add_user(app, "ada", Role.ADMIN)
    return signed_in(TestClient(create_app(app), base_url=BASE), "ada")


def compose(client: TestClient, action: str = "preview", **fields: str) -> tuple[int, str]:
    page = client.get("/admin/compose")
    form = {
        **hidden_fields(page.text),
        "title": "Dangerous dog loose",
        "areas": "Chatham",
        "priority": "urgent",
    }
    form |= {"body": "Residents of Chatham: keep children indoors.", **fields, "action": action}
    answer = client.post("/admin/compose", data=form, follow_redirects=False)
    return answer.status_code, answer.text if answer.status_code != 303 else answer.headers[
        "location"
    ]


def test_the_preview_shows_how_many_it_reaches_by_frequency_before_anything_is_sent(
    app: App, editor: TestClient
) -> None:
    seed_subscribers(
        app.store, count=6, now=EARLIER, areas=("chatham",)
    )  # 2 each: immediate, daily, weekly
    seed_subscribers(app.store, count=3, now=EARLIER, areas=("dover",), domain="dover.example.org")
    status, html = compose(editor)
    assert status == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "It reaches 6 subscribers to Chatham: 6 get it now" in text
    assert "immediate 2" in text and "daily 2" in text and "weekly 2" in text
    assert "Send to 6 subscribers now" in text
    assert app.store.advisories.count() == 0 and outbox_rows(app.store.engine) == []


def test_sending_stores_the_advisory_with_its_own_address_and_queues_the_urgent_alerts(
    app: App, editor: TestClient
) -> None:
    seed_subscribers(app.store, count=3, now=EARLIER, areas=("chatham",))
    status, location = compose(editor, "send")
    assert status == 303
    advisory_id = int(location.split("/")[3].split("?")[0])
    item = app.store.advisories.get(advisory_id)
    assert item.priority.value == "urgent" and item.areas == ("chatham",)
    assert item.url.startswith(BASE + "/advisories/new/")
    assert len(outbox_rows(app.store.engine)) == 3
    page = editor.get(location)
    assert "3 messages queued" in page.text
    # A second advisory gets an address of its own: it never replaces the first.
    compose(editor, "send", title="Second appeal")
    assert app.store.advisories.count() == 2
    # The public address leads to its archive page.
    public = TestClient(create_app(app), base_url=BASE).get(
        item.url.removeprefix(BASE), follow_redirects=False
    )
    assert public.status_code == 308 and public.headers["location"] == f"/advisories/{advisory_id}"
    assert app.store.audit.recent()[0].action == "compose-send"


def test_sending_the_same_draft_twice_stores_it_once(app: App, editor: TestClient) -> None:
    page = editor.get("/admin/compose")
    form = {
        **hidden_fields(page.text),
        "title": "Appeal",
        "areas": "Medway",
        "priority": "normal",
        "body": "Text.",
    }
    for _ in range(2):
        assert (
            editor.post(
                "/admin/compose", data={**form, "action": "send"}, follow_redirects=False
            ).status_code
            == 303
        )
    assert app.store.advisories.count() == 1


def test_a_composed_advisory_with_missing_fields_or_an_unknown_area_says_what_to_fix(
    editor: TestClient,
) -> None:
    status, html = compose(editor, title="", areas="Atlantis")
    assert status == 400
    assert "Enter a title" in html and "Atlantis" in html


def test_advisory_text_is_escaped_and_the_preview_sanitised_as_residents_get_it(
    app: App, editor: TestClient
) -> None:
    status, html = compose(
        editor,
        title="<script>alert(1)</script> Scam",
        body='Beware <img src=x onerror="alert(2)"> and <a href="javascript:alert(3)">this</a>.',
    )
    assert status == 200
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert (
        "onerror" not in html.split('name="body"')[0]
        and "javascript:" not in html.split('name="body"')[0]
    )
    compose(editor, "send", title="<b>Bold</b> title")
    assert "<b>Bold</b>" not in editor.get("/admin").text


def test_the_inbox_shows_each_advisory_with_whom_it_reaches_and_the_words_that_decided_it(
    app: App, editor: TestClient
) -> None:
    compose(
        editor,
        "send",
        title="Car crime",
        areas="Kent",
        priority="normal",
        body="Cars were broken into in Gillingham overnight.",
    )
    inbox = editor.get("/admin")
    assert "Car crime" in inbox.text and "Gillingham" in inbox.text
    assert "reaches <strong>Gillingham</strong>" in inbox.text


def test_retag_from_the_console_is_the_cli_rule_and_is_audited(
    app: App, editor: TestClient
) -> None:
    _, location = compose(editor, "send", priority="normal")
    advisory_id = int(location.split("/")[3].split("?")[0])
    token = csrf_of(editor, f"/admin/advisories/{advisory_id}")
    answer = editor.post(
        f"/admin/advisories/{advisory_id}/retag",
        data={"csrf": token, "reach": "areas", "areas": "Swale, ME4"},
    )
    assert answer.status_code == 200 and "Saved: it now reaches" in answer.text
    item = app.store.advisories.get(advisory_id)
    assert set(item.areas) == {"swale", "chatham"} and item.area_override is not None
    entry = app.store.audit.recent()[0]
    assert entry.action == "retag" and entry.before["areas"] == ["chatham"] and entry.actor == "jo"
    editor.post(f"/admin/advisories/{advisory_id}/retag", data={"csrf": token, "reach": "auto"})
    assert app.store.advisories.get(advisory_id).area_override is None
    bad = editor.post(
        f"/admin/advisories/{advisory_id}/retag",
        data={"csrf": token, "reach": "areas", "areas": "Narnia"},
    )
    assert bad.status_code == 400 and "Narnia" in bad.text


def test_the_outbox_page_shows_the_figures_of_alerts_status(app: App, editor: TestClient) -> None:
    seed_subscribers(
        app.store, count=2, now=EARLIER, areas=("chatham",), frequencies=("immediate",)
    )
    compose(editor, "send")
    page = editor.get("/admin/outbox").text
    pending = app.store.runs.outbox_status()["outbox"]["pending"]
    assert pending == 2 and re.search(r"<td>pending</td><td>2</td>", page)


def test_an_admin_finds_a_subscriber_masked_exports_and_erases_them_and_the_audit_keeps_no_address(
    app: App, admin: TestClient
) -> None:
    subscriber = app.store.subscribers.add(
        make_subscription(app.gazetteer, "jane.doe@example.org", ["medway"], frequency="weekly"),
        now=NOW,
    )
    token = csrf_of(admin, "/admin/subscribers")
    found = admin.post(
        "/admin/subscribers",
        data={"csrf": token, "email": "jane.doe@example.org", "action": "find"},
    )
    assert "j…e@example.org" in found.text and f"Subscriber {subscriber.id}" in found.text
    exported = admin.post(
        "/admin/subscribers",
        data={"csrf": token, "email": "jane.doe@example.org", "action": "export"},
    )
    assert "&#34;subscriptions&#34;" in exported.text or '"subscriptions"' in exported.text
    erased = admin.post(
        "/admin/subscribers/erase",
        data={"csrf": token, "email": "jane.doe@example.org", "confirm": "yes"},
    )
    assert erased.status_code == 200 and "1 subscription removed" in erased.text
    assert app.store.subscribers.find("jane.doe@example.org") is None
    log = admin.get("/admin/audit").text
    assert "subscriber-erase" in log and f"subscriber {subscriber.id}" in log
    assert all("jane.doe" not in repr(entry) for entry in app.store.audit.recent())


def test_the_audit_log_is_kept_for_retention_audit_days(
    app: App, editor: TestClient, clock: ManualClock
) -> None:
    compose(editor, "send")
    assert app.store.audit.recent()
    clock.advance(timedelta(days=app.config.retention.audit_days + 1))
    report = app.store.retention.purge(app.config.retention, app.config.security, app.now())
    assert report.audit_entries >= 2 and app.store.audit.recent() == []


def test_the_sources_page_shows_each_sources_health(app: App, editor: TestClient) -> None:
    app.store.sources.record_polls(
        [SourcePoll("https://force.example/feed", "feed", error="HTTP 503 from the server")], NOW
    )
    page = editor.get("/admin/sources").text
    assert "https://force.example/feed" in page and "failing" in page and "HTTP 503" in page


def test_the_email_as_residents_get_it_is_shown_before_anything_is_stored(
    app: App, editor: TestClient
) -> None:
    status, html = compose(
        editor, "email", body="Keep **children** indoors.", advice="Call 999 if you see it."
    )
    assert status == 200
    assert "Dangerous dog loose" in html and "<strong>children</strong>" in html
    assert "token=preview" in html  # example personal links, never a real one
    assert app.store.advisories.count() == 0
