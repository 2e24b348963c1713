"""The forms cannot be aimed at someone's inbox: one row per mailbox however it is
spelled, at most one mail per mailbox per 10 minutes and three a day across case
variants and re-subscriptions, and a limit per client address, all kept in the database
so they hold with several web processes (here: two servers on one database, posted to
from many threads at once)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.limits import CLIENT
from alerts.web import create_app
from alerts.web.testing import serve_in_thread
from tests.support import NOW
from tests.support.tables import row_counts, table_rows

BASE = "https://alerts.example.org"
VARIANTS = [
    "victim@example.org", "Victim@example.org", "VICTIM@example.org", "vIcTiM@Example.org", "victiM@EXAMPLE.ORG",
    "Victim@Example.Org", "vICTIM@example.org", "VIctim@example.org", "viCTim@example.org", "victIM@example.org",
    "VICtim@example.org", "vicTIM@example.org", "ViCtIm@example.org", "vIctIm@example.org", "VicTim@example.org",
    "vicTim@Example.org", "VICTIm@example.org", "Victi M@example.org".replace(" ", ""), "vIcTIM@EXAMPLE.org",
    "victim@EXAMPLE.org",
]  # fmt: skip


def messages(app: App) -> int:
    return row_counts(app.store.engine, "outbox")["outbox"]


def rows(app: App) -> list[str]:
    return [row["email"] for row in table_rows(app.store.engine, "subscribers")]


def test_twenty_case_variants_posted_at_once_to_two_web_processes_make_one_row_and_one_email(
    app: App, write_config: Callable[..., Path], db_url: str
) -> None:
    assert len(set(VARIANTS)) == 20 and len({v.lower() for v in VARIANTS}) == 1
    other = App(
        write_config(database=db_url, site={"base_url": BASE})
    )  # a second web process's own engine
    for each in (app, other):
        assert each.store  # opened before serving, as 'alerts web' does at start-up
    try:
        with (
            serve_in_thread(create_app(app)) as first,
            serve_in_thread(create_app(other)) as second,
        ):
            start = threading.Barrier(len(VARIANTS))
            answers: list[int] = []

            def post(index: int, address: str) -> None:
                start.wait()
                url = (first, second)[index % 2] + "/subscribe"
                data = {"email": address, "area": "medway", "frequency": "daily"}
                answers.append(httpx.post(url, data=data, timeout=30).status_code)

            threads = [threading.Thread(target=post, args=pair) for pair in enumerate(VARIANTS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert answers == [200] * 20
    finally:
        other.close()
    assert len(rows(app)) == 1
    assert messages(app) == 1


def test_one_mail_per_mailbox_per_ten_minutes_and_three_a_day(app: App, clock: ManualClock) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    sent = []
    for minutes in (0, 1, 9, 11, 15, 30, 45, 60, 24 * 60 + 1):
        clock.set(NOW + timedelta(minutes=minutes))
        address = VARIANTS[minutes % 20]
        # Alternate between signing up and asking for a manage link: one limit for both.
        if minutes % 2:
            client.post("/manage", data={"email": address})
        else:
            client.post(
                "/subscribe", data={"email": address, "area": "dover", "frequency": "weekly"}
            )
        sent.append(messages(app))
    # Mail at 0, 11 and 30 minutes; then the day's three are used up until a day on.
    assert sent == [1, 1, 1, 2, 2, 3, 3, 3, 4]


def test_a_client_address_that_posts_too_often_is_told_to_wait(
    app: App, clock: ManualClock
) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    clock.set(NOW)
    for n in range(CLIENT.per_window):
        response = client.post(
            "/subscribe", data={"email": f"n{n}@example.org", "area": "kent", "frequency": "daily"}
        )
        assert response.status_code == 200
    response = client.post("/manage", data={"email": "another@example.org"})
    assert response.status_code == 429 and response.headers["retry-after"] == "3600"
    assert "<h1>Too many requests</h1>" in response.text
    assert messages(app) == CLIENT.per_window
    clock.set(NOW + CLIENT.window + timedelta(seconds=1))
    assert client.post("/manage", data={"email": "another@example.org"}).status_code == 200
