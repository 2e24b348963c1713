"""The sign-up and subscription pages as a resident meets them: the headers every page
carries, the form's words for each mistake, typed areas that widen shown back before
anything is saved, and village links that say which town they stand for."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.subscribers import make_subscription
from alerts.tokens import MANAGE, UNSUBSCRIBE, LinkSigner
from alerts.web import create_app
from tests.support import NOW

BASE = "https://alerts.example.org"


@pytest.fixture
def app(write_config: Callable[..., Path]) -> Iterator[App]:
    app = App(write_config(site={"base_url": BASE}))
    yield app
    app.close()


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url=BASE)


def test_every_subscription_page_forbids_framing_scripts_and_sniffing(
    app: App, client: TestClient
) -> None:
    subscriber = app.store.subscribers.add(
        make_subscription(app.gazetteer, "jo@example.org", ["medway"]), now=NOW
    )
    signer = LinkSigner(app.config.site.base_url, app.config.security)
    pages = [
        client.get("/subscribe"),
        client.post("/subscribe", data={"email": "nope"}),
        client.get("/manage"),
        client.get(f"/manage?token={signer.token(subscriber.id, MANAGE, NOW)}"),
        client.get(f"/unsubscribe?token={signer.token(subscriber.id, UNSUBSCRIBE, NOW)}"),
        client.get("/confirm?token=garbage"),
        client.get("/privacy"),
        client.get("/no-such-page"),
    ]
    for response in pages:
        where = f"{response.request.method} {response.request.url.path}"
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, where
        assert response.headers["x-content-type-options"] == "nosniff", where
    # A personal page keeps its stricter referrer rule: the token never leaves in a Referer.
    assert pages[3].headers["referrer-policy"] == "no-referrer"


def errors_on(html: str) -> list[str]:
    return re.findall(r'<p class="error" id="[a-z]+-error">(.*?)</p>', html)


def test_every_mistake_is_worded_as_gov_uk_words_it(client: TestClient) -> None:
    cases = [
        ({"email": "", "areas": "Medway", "frequency": "daily"}, "Enter your email address"),
        ({"email": "jo@example", "areas": "Medway", "frequency": "daily"},
         "Enter an email address in the correct format, like name@example.com"),
        ({"email": "jo@example.org", "areas": "", "frequency": "daily"},
         "Choose at least one area, or type a town or postcode district"),
        ({"email": "jo@example.org", "areas": "Medway", "frequency": ""}, "Select how often you want alerts"),
        ({"email": "jo@example.org", "areas": "Chathm", "frequency": "daily"},
         "“Chathm” is not a place we know. Did you mean Chatham or Chartham?"),
    ]  # fmt: skip
    for data, sentence in cases:
        response = client.post("/subscribe", data=data)
        assert response.status_code == 400
        assert errors_on(response.text) == [sentence], data
        # The summary says it too, and takes focus as the page loads (no script needed).
        assert f">{sentence}</a></li>" in response.text
        assert re.search(
            r'<div class="notice" role="alert" tabindex="-1" id="errors" autofocus>', response.text
        )


def test_a_name_of_several_places_offers_each_by_its_district(app: App, client: TestClient) -> None:
    homonym = next(iter(app.gazetteer._homonyms))  # a folded name that several places share
    response = client.post(
        "/subscribe", data={"email": "jo@example.org", "areas": homonym, "frequency": "daily"}
    )
    [message] = errors_on(response.text)
    assert "is the name of more than one place in Kent: say which. Did you mean " in message
    assert message.count(" (") >= 2  # each named with the area it lies in


@pytest.mark.parametrize(
    ("typed", "ticked", "said"),
    [
        ("ME5", [], "“ME5” covers more than one town, so it means all of Medway."),
        (
            "Rochester, Kent",
            [],
            "“Kent” means every advisory anywhere in Kent. If you meant a place in Kent, remove “Kent”.",
        ),
        ("Kent", ["dover"], "“Kent” means every advisory anywhere in Kent."),
    ],
)
def test_typed_areas_that_widen_are_shown_back_and_saved_only_when_sent_again(
    app: App, client: TestClient, typed: str, ticked: list[str], said: str
) -> None:
    data: dict[str, Any] = {
        "email": "wide@example.org",
        "areas": typed,
        "area": ticked,
        "frequency": "daily",
    }
    shown = client.post("/subscribe", data=data)
    assert shown.status_code == 200 and "<h1>Get alerts by email</h1>" in shown.text
    assert "Check your areas" in shown.text and said in shown.text
    assert f'value="{typed}"' in shown.text  # kept, to change or to keep
    assert app.store.subscribers.find("wide@example.org") is None
    key = re.search(r'name="widening" value="([^"]+)"', shown.text)
    assert key, shown.text
    kept = client.post("/subscribe", data={**data, "widening": html.unescape(key.group(1))})
    assert "<h1>Check your email</h1>" in kept.text


def test_a_changed_entry_is_shown_back_again(app: App, client: TestClient) -> None:
    shown = client.post(
        "/subscribe", data={"email": "w@example.org", "areas": "ME5", "frequency": "daily"}
    )
    key = re.search(r'name="widening" value="([^"]+)"', shown.text)
    assert key
    again = client.post(
        "/subscribe",
        data={
            "email": "w@example.org",
            "areas": "ME8",
            "widening": html.unescape(key.group(1)),
            "frequency": "daily",
        },
    )
    assert "“ME8” covers more than one town" in again.text


def test_a_town_postcode_or_a_lone_county_is_saved_at_once(app: App, client: TestClient) -> None:
    for typed in ("ME4", "Chatham, ME7", "Kent"):
        response = client.post(
            "/subscribe", data={"email": "town@example.org", "areas": typed, "frequency": "daily"}
        )
        assert "<h1>Check your email</h1>" in response.text, typed


def test_managing_shows_widening_back_before_saving(app: App, client: TestClient) -> None:
    subscriber = app.store.subscribers.add(
        make_subscription(app.gazetteer, "jo@example.org", ["dover"]), now=NOW
    )
    manage = LinkSigner(app.config.site.base_url, app.config.security).token(
        subscriber.id, MANAGE, NOW
    )
    shown = client.post("/manage", data={"token": manage, "areas": "ME5", "frequency": "daily"})
    assert "Check your areas" in shown.text and "press Save again" in shown.text
    assert app.store.subscribers.get(subscriber.id).areas == ("dover",)
    key = re.search(r'name="widening" value="([^"]+)"', shown.text)
    assert key
    client.post(
        "/manage",
        data={
            "token": manage,
            "areas": "ME5",
            "frequency": "daily",
            "widening": html.unescape(key.group(1)),
        },
    )
    assert app.store.subscribers.get(subscriber.id).areas == ("medway",)


def test_a_village_link_ticks_its_town_and_says_so(client: TestClient) -> None:
    page = client.get("/subscribe?area=lordswood").text
    assert re.findall(r'name="area" value="([^"]+)" checked', page) == ["chatham"]
    assert "Alerts for Lordswood come with those for Chatham, so Chatham is ticked below." in page


def test_the_home_and_area_pages_lead_to_email_alerts(client: TestClient) -> None:
    assert '<a class="cta" href="/subscribe">Get email alerts</a>' in client.get("/").text
    area = client.get("/areas/chatham").text
    assert '<a class="cta" href="/subscribe?area=chatham">Get email alerts for Chatham</a>' in area
