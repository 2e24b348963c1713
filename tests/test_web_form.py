"""The sign-up and subscription pages as a resident meets them: the headers every page
carries, the form's words for each mistake, typed areas that widen shown back before
anything is saved, and village links that say which town they stand for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.store.subscribers import add_subscriber
from alerts.subscribers import make_subscription
from alerts.tokens import MANAGE, UNSUBSCRIBE, LinkSigner
from alerts.web import create_app
from tests.conftest import NOW

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
    subscriber = add_subscriber(
        app.store, make_subscription(app.gazetteer, "jo@example.org", ["medway"]), now=NOW
    )
    signer = LinkSigner(app.config)
    pages = [
        client.get("/subscribe"),
        client.post("/subscribe", data={"email": "nope"}),
        client.get("/manage"),
        client.get(f"/manage?token={signer.token(subscriber.id, MANAGE)}"),
        client.get(f"/unsubscribe?token={signer.token(subscriber.id, UNSUBSCRIBE)}"),
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
