"""The privacy notice: a page the operator edits, stating retention in the days config.yaml
sets, linked from the sign-up form, from every page and from every email."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jinja2 import TemplateError
from starlette.testclient import TestClient

from alerts.app import App
from alerts.digest import queue_digests
from alerts.store.subscribers import PENDING
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import send_confirmation
from alerts.types import Frequency
from alerts.web import create_app
from tests.support import NOW
from tests.support.digests import advisory, built, parts, save, subscribe

BASE = "https://alerts.example.org"
RETENTION = {"sent_days": 3, "pending_days": 5, "unsubscribed_days": 40, "web_log_days": 9}


@pytest.fixture
def app(write_config: Callable[..., Path]) -> Iterator[App]:
    app = App(write_config(site={"base_url": BASE}, retention=RETENTION))
    yield app
    app.close()


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_privacy_notice_states_each_retention_period_in_days_from_the_config(
    client: TestClient,
) -> None:
    response = client.get("/privacy")
    assert response.status_code == 200
    text = text_of(response.text)
    assert "Each email we send you is kept for 3 days after it is sent" in text
    assert "A sign-up you never confirm is deleted 5 days after it was made" in text
    assert "we keep your address for 40 days. After that we keep only a keyed hash" in text
    for heading in (
        "Who is responsible",
        "Why we keep your address",
        "Our lawful basis",
        "What we keep, and for how long",
        "Your rights, and how to use them",
    ):
        assert f">{heading}</h2>" in response.text
    assert "Kent Police is the data controller" in text
    assert 'href="/manage"' in response.text  # how to use the rights, not just their names


def test_the_privacy_notice_says_how_long_logs_and_limit_records_are_kept_and_what_lies_beyond_reach(
    client: TestClient,
) -> None:
    text = text_of(client.get("/privacy").text)
    assert (
        "Our web server's logs record the pages asked for and the address your connection came from"
        in text
    )
    assert "are kept for 9 days" in text
    assert (
        "we count, for a day after the last use, how often mail was asked for each address" in text
    )
    assert (
        "Beyond our reach: the mail service that carries our emails to you keeps its own delivery logs"
        in text
    )


def test_the_sign_up_form_links_the_privacy_notice_beside_the_button(client: TestClient) -> None:
    form = re.search(r'<form class="subscription".*?</form>', client.get("/subscribe").text, re.S)
    assert form and '<a href="/privacy">privacy notice</a>' in form.group(0)


@pytest.mark.parametrize(
    "path", ["/", "/areas/medway", "/subscribe", "/privacy", "/no-such-page", "/unsubscribe"]
)
def test_every_page_links_the_privacy_notice(client: TestClient, path: str) -> None:
    footer = re.search(r'<footer class="site">.*?</footer>', client.get(path).text, re.S)
    assert footer and '<a href="/privacy">Privacy notice</a>' in footer.group(0), path


def test_every_email_links_the_privacy_notice(app: App) -> None:
    pending = app.store.subscribers.add(
        make_subscription(app.gazetteer, "new@example.org", ["medway"]), now=NOW, status=PENDING
    )
    send_confirmation(app.config.mail, app.store, pending, ["Medway"], now=NOW)
    subscribe(app, "daily@example.org", ["medway"], frequency="daily")
    subscribe(app, "group@example.org", ["medway"], frequency="immediate", forwardable=True)
    save(app, advisory("thefts", title="Catalytic converter thefts"))
    queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.DAILY, now=NOW
    )
    queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    messages = [message for _, _, message in built(app)]
    assert len(messages) == 3
    for message in messages:
        text, html = parts(message)
        assert f"{BASE}/privacy" in text, message["Subject"]
        assert f'href="{BASE}/privacy"' in html, message["Subject"]


def test_the_operators_privacy_notice_replaces_the_packaged_one(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "web").mkdir(parents=True)
    (templates / "web" / "privacy.html").write_text(
        '{% extends "base.html" %}{% block content %}<p>Kent County Council keeps your address.</p>{% endblock %}',
        encoding="utf-8",
    )
    app = App(write_config(templates=str(templates)))
    try:
        page = TestClient(create_app(app)).get("/privacy")
        assert page.status_code == 200 and "Kent County Council keeps your address." in page.text
    finally:
        app.close()


def test_a_broken_privacy_template_stops_the_web_app_at_start_up(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "web").mkdir(parents=True)
    (templates / "web" / "privacy.html").write_text("{% for x in %}", encoding="utf-8")
    app = App(write_config(templates=str(templates)))
    try:
        with pytest.raises(TemplateError):
            create_app(app)
    finally:
        app.close()
