"""Unsubscribing in a real browser on a phone-sized screen: the link from an email opens
a page that asks first (changing nothing), and the button does it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.store.subscribers import ACTIVE, UNSUBSCRIBED
from alerts.subscribers import make_subscription
from alerts.tokens import LinkSigner
from tests.support import NOW


def test_an_unsubscribe_link_asks_then_the_button_unsubscribes(
    live_server: Callable[..., Any], page: Any
) -> None:
    server = live_server()
    app = server.app
    subscriber = app.store.subscribers.add(
        make_subscription(app.gazetteer, "resident@example.org", ["medway"]), now=NOW
    )
    link = (
        LinkSigner(app.config.site.base_url, app.config.security)
        .links(subscriber.id, NOW)
        .unsubscribe_url
    )
    assert link.startswith(server.url)

    response = page.goto(link)
    assert response.status == 200
    assert page.locator("h1").inner_text() == f"Unsubscribe from {app.config.site.name}?"
    assert (
        app.store.subscribers.get(subscriber.id).status is ACTIVE
    )  # opening the link changed nothing
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    # The browser sends its own Origin with the form: the same-site check lets it through.
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_url(f"{server.url}/unsubscribe")
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
