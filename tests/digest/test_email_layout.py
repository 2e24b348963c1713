"""Every email shares one layout (the site's name above, the same footer, dark mode) and
the pages' words: areas joined "Chatham and Medway", what each link does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.config import SiteConfig
from alerts.digest import queue_digests
from alerts.store.subscribers import PENDING
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import confirmation_content
from alerts.subscribers.notices import KINDS, notice_content
from alerts.types import Frequency
from tests.support import NOW
from tests.support.digests import advisory, built, parts, save, subscribe
from tests.support.sections import Stages, make_stages

FOOTER = "In an emergency call 999. To report a crime call 101."


@pytest.fixture
def stages(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> Iterator[Stages]:
    site = SiteConfig(base_url="https://alerts.example.org", name="Kent Area Alerts")
    made = make_stages(tmp_path, sqlite_url, clock, gazetteer, site=site)
    yield made
    made.close()


def every_email(stages: Stages) -> dict[str, tuple[str, str]]:
    """Kind -> (text, HTML) of each kind of email."""
    pending = stages.store.subscribers.add(
        make_subscription(stages.gazetteer, "new@example.org", ["chatham", "medway"]),
        now=NOW,
        status=PENDING,
    )
    names = ["Chatham", "Medway"]
    _, text, html = confirmation_content(
        stages.mail, pending, "https://alerts.example.org/confirm?token=t", names
    )
    found = {"confirm": (text, html)}
    for kind in KINDS:
        _, text, html = notice_content(stages.mail, stages.digests, pending, kind, names, NOW)
        found[kind] = (text, html)
    subscribe(stages, "day@example.org", ["medway"], frequency="daily")
    save(stages, advisory("thefts", title="Catalytic converter thefts"))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, digest)] = built(stages)
    found["digest"] = parts(digest)
    return found


def test_every_email_has_the_one_layout_with_dark_mode(stages: Stages) -> None:
    for kind, (_, html) in every_email(stages).items():
        assert "@media (prefers-color-scheme: dark)" in html, kind
        assert '<meta name="color-scheme" content="light dark">' in html, kind
        assert '<p class="site"' in html and "Kent Area Alerts</p>" in html, kind
        assert FOOTER in html and "https://alerts.example.org/privacy" in html, kind
        assert html.count("<h1") == 1, kind


def test_emails_join_areas_with_and_as_pages_do(stages: Stages) -> None:
    emails = every_email(stages)
    for kind in ("confirm", "already", "welcome"):
        text, html = emails[kind]
        assert "Chatham and Medway" in " ".join(text.split()), kind
        assert "Chatham and Medway" in html and "Chatham, Medway" not in html, kind


def test_the_welcome_says_the_unsubscribe_link_opens_a_page_with_a_button(stages: Stages) -> None:
    text, html = every_email(stages)["welcome"]
    assert "takes effect at once" not in text and "takes effect at once" not in html
    assert "opens a page where one button stops all your alerts" in html


def test_the_confirmation_says_urgent_alerts_come_at_once_as_the_confirm_page_does(
    stages: Stages,
) -> None:
    text, html = every_email(stages)["confirm"]
    assert "daily alerts for Chatham and Medway, and urgent alerts at once" in " ".join(
        text.split()
    )
    assert "and urgent alerts at once" in html
