"""Links bound to their person: after an erasure, the erased person's links (confirm,
manage, one-click) do nothing to anybody, the next sign-up included; a link of the old
form (made before links carried a key) still works for the row it was made for."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.subscribers import make_subscription
from alerts.tokens import MANAGE, UNSUBSCRIBE, link_signer
from alerts.types import SubscriberStatus
from alerts.web import create_app

BASE = "https://alerts.example.org"
ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}


@pytest.fixture
def config(write_config: Callable[..., Path], db_url: str, config_path: Path) -> Path:
    return write_config(database=db_url, site={"base_url": BASE})


@pytest.fixture
def app(config: Path) -> Iterator[App]:
    app = App(config)
    yield app
    app.close()


def confirmation_link(app: App, tmp_path: Path, to: str) -> str:
    send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    for path in sorted((tmp_path / "maildir").rglob("*")):
        text = path.read_text("utf-8") if path.is_file() else ""
        if f"To: {to}" in text and (
            found := re.search(r"/confirm\?token=([A-Za-z0-9_.\-]+)", text)
        ):
            return found.group(1)
    raise AssertionError(f"no confirmation to {to}")


def test_an_erased_persons_links_act_on_nobody_not_even_the_next_sign_up(
    app: App, config: Path, run_cli: Callable[..., Result], clock: ManualClock, tmp_path: Path
) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    client.post(
        "/subscribe", data={"email": "erased@example.org", "area": ["medway"], "frequency": "daily"}
    )
    erased = app.store.subscribers.find_mailbox("erased@example.org")
    assert erased is not None
    token = confirmation_link(app, tmp_path, "erased@example.org")
    signer = link_signer(app.config.site.base_url, app.config.security)
    manage = signer.token(erased.id, MANAGE, clock.now(), erased.link_key)
    unsubscribe = signer.token(erased.id, UNSUBSCRIBE, clock.now(), erased.link_key)
    assert (
        run_cli("subscribers", "erase", "erased@example.org", "--yes", config=config).exit_code == 0
    )

    clock.advance(timedelta(minutes=1))
    client.post(
        "/subscribe",
        data={"email": "newcomer@example.org", "area": ["dover"], "frequency": "weekly"},
    )
    newcomer = app.store.subscribers.find_mailbox("newcomer@example.org")
    assert newcomer is not None and newcomer.id != erased.id  # ids are never reused

    assert client.post("/confirm", data={"token": token}).status_code == 400
    assert client.get(f"/manage?token={manage}").status_code == 400
    assert (
        client.post(f"/unsubscribe/one-click?token={unsubscribe}", **ONE_CLICK).status_code == 400
    )
    assert app.store.subscribers.get(newcomer.id).status is SubscriberStatus.PENDING


def test_a_link_with_another_rows_key_acts_on_nobody(app: App, clock: ManualClock) -> None:
    ann = app.store.subscribers.add(
        make_subscription(app.gazetteer, "ann@example.org", ["medway"], frequency="daily"),
        now=clock.now(),
    )
    forged_key = link_signer(app.config.site.base_url, app.config.security).token(
        ann.id, UNSUBSCRIBE, clock.now(), "someone-elses-key"
    )
    client = TestClient(create_app(app), base_url=BASE)
    assert client.post(f"/unsubscribe/one-click?token={forged_key}", **ONE_CLICK).status_code == 400
    assert app.store.subscribers.get(ann.id).status is SubscriberStatus.ACTIVE


def test_an_old_form_link_works_for_its_own_row_and_not_for_a_later_row_with_its_id(
    app: App, clock: ManualClock
) -> None:
    ann = app.store.subscribers.add(
        make_subscription(app.gazetteer, "ann@example.org", ["medway"], frequency="daily"),
        now=clock.now(),
    )
    client = TestClient(create_app(app), base_url=BASE)
    signer = link_signer(app.config.site.base_url, app.config.security)
    # Made for a row with this id before the row there now existed (an id reused before the upgrade).
    before = signer.token(ann.id, UNSUBSCRIBE, clock.now() - timedelta(days=400))
    assert client.post(f"/unsubscribe/one-click?token={before}", **ONE_CLICK).status_code == 400
    assert app.store.subscribers.get(ann.id).status is SubscriberStatus.ACTIVE

    clock.advance(timedelta(days=900))  # an unsubscribe link never expires
    old_form = signer.token(ann.id, UNSUBSCRIBE, clock.now() - timedelta(days=899))
    assert client.post(f"/unsubscribe/one-click?token={old_form}", **ONE_CLICK).status_code == 200
    assert app.store.subscribers.get(ann.id).status is SubscriberStatus.UNSUBSCRIBED
