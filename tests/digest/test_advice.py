"""Lead with what to do: an advisory's advice (front matter ``advice:``, else the
paragraphs that tell the reader what to do; the rule is in alerts/digest/advice.py) is
shown at the top of the alert and in each digest item, and digest items sit under the
area the advisory concerns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.digest import queue_digests
from alerts.digest.advice import advice_of, is_advice
from alerts.ingest.files import parse_advisory_file
from alerts.types import Frequency
from alerts.web import create_app
from tests.support import NOW, REPO
from tests.support.digests import advisory, built, parts, save, subscribe
from tests.support.sections import Stages

SEED = REPO / "advisories" / "2020-12-18-telephone-fraudster-poses-as-kent-police-officer.md"
SEED_ADVICE = (
    "If you receive such a call, end it immediately, wait five minutes for the phone line to clear and contact"
    " Action Fraud or the police. If possible, call from a different number - if the call was received on a"
    " landline, for example, contact the authorities on your mobile."
)
FRAUD_BODY = (
    "<p>A Medway man was defrauded by a caller who claimed to be from the police.</p>"
    "<p>Investigators are reviewing the circumstances.</p>"
    "<p>If you receive such a call, end it immediately and call 101 from another phone.</p>"
    "<p>'If you have received a call of this nature, please report it,' said a detective.</p>"
)


@pytest.fixture
def app(write_config: Callable[..., Path]) -> Iterator[App]:
    """For the web page: the mail goes through the digest tests' ``stages``."""
    app = App(write_config(site={"base_url": "https://alerts.example.org"}))
    yield app
    app.close()


def test_the_seed_s_advice_is_its_seventh_paragraph_found_by_the_rule(gazetteer: Gazetteer) -> None:
    parsed = parse_advisory_file(SEED, gazetteer, now=datetime(2026, 1, 1, tzinfo=UTC)).advisory
    assert advice_of(parsed.body_text, parsed.extra) == (SEED_ADVICE,)


@pytest.mark.parametrize(
    ("paragraph", "advice"),
    [
        ("If you receive such a call, end it immediately.", True),
        ("Anyone with information is asked to call 101 quoting reference 46/41234/24.", True),
        ("Never give your PIN to anyone who calls you.", True),
        ("Do not open the door to callers you do not know.", True),
        ("If possible, call from a different number.", True),
        ("Report attacks to Action Fraud.", True),
        (
            "'If you have received a call, please report it to us.'",
            False,
        ),  # a quotation stays where it is
        ("The victim reported receiving a call on Tuesday.", False),
        ("Kent Police will never request money from an individual.", False),
        ("If you were there, thank you.", False),  # a condition, but no instruction
        ("Investigators would like to hear from anyone that has received a similar call.", False),
    ],
)
def test_a_paragraph_is_advice_when_it_tells_the_reader_what_to_do(
    paragraph: str, advice: bool
) -> None:
    assert is_advice(paragraph) is advice


def test_front_matter_advice_wins_over_the_rule() -> None:
    body = "If you see this, call 101.\n\nDo not approach him."
    assert advice_of(body, {"advice": "Lock your shed.\n\nMark your tools."}) == (
        "Lock your shed.",
        "Mark your tools.",
    )
    assert advice_of(body, {"advice": ["Lock your shed.", "<b>Mark</b> your tools."]}) == (
        "Lock your shed.",
        "Mark your tools.",
    )
    assert advice_of(body, {}) == ("If you see this, call 101.", "Do not approach him.")


def test_the_alert_shows_what_to_do_before_the_full_text(stages: Stages) -> None:
    subscribe(stages, "now@example.org", ["chatham"], frequency="immediate")
    save(
        stages, advisory("fraud", title="Caller poses as police", body=FRAUD_BODY, areas=["medway"])
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    advice = "If you receive such a call, end it immediately and call 101 from another phone."
    assert html.index("What to do") < html.index(advice) < html.index("A Medway man was defrauded")
    flat = " ".join(text.split())
    assert flat.index("What to do:") < flat.index(advice) < flat.index("A Medway man was defrauded")


def test_each_digest_item_shows_its_advice_and_sits_under_the_area_it_concerns(
    stages: Stages,
) -> None:
    subscribe(stages, "day@example.org", ["chatham"], frequency="daily")
    save(
        stages, advisory("fraud", title="Caller poses as police", body=FRAUD_BODY, areas=["medway"])
    )
    save(stages, advisory("burglary", title="Burglary in Chatham", areas=["chatham"]))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    # The daily digest shows summaries, not full texts; the advice is shown all the same.
    assert "If you receive such a call, end it immediately and call 101 from another phone." in html
    # A Medway advisory sits under Medway, not under the subscriber's Chatham.
    medway = html.index(">Medway</h2>")
    chatham = html.index(">Chatham</h2>")
    assert (
        chatham
        < html.index("Burglary in Chatham", chatham)
        < medway
        < html.index("Caller poses as police", medway)
    )
    assert "What to do:" in text


def test_the_seed_alert_shows_its_advice_before_the_full_text(stages: Stages) -> None:
    parsed = parse_advisory_file(SEED, stages.gazetteer, now=NOW).advisory
    # The seed is from 2020, too old to mail; the same advisory published an hour ago.
    save(stages, dataclasses.replace(parsed, published_at=NOW - timedelta(hours=1)))
    subscribe(stages, "now@example.org", ["chatham"], frequency="immediate")
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    flat = " ".join(text.split())
    story = "The victim reported receiving a call"
    assert flat.index("What to do:") < flat.index(SEED_ADVICE) < flat.index(story)
    assert (
        html.index("What to do")
        < html.index("end it immediately, wait five minutes")
        < html.index(story)
    )


def test_the_advisory_page_leads_with_what_to_do(app: App) -> None:
    advisory_id = save(
        app, advisory("fraud", title="Caller poses as police", body=FRAUD_BODY, areas=["medway"])
    )
    page = (
        TestClient(create_app(app), base_url="https://alerts.example.org")
        .get(f"/advisories/{advisory_id}")
        .text
    )
    advice = "If you receive such a call, end it immediately and call 101 from another phone."
    assert (
        page.index('<h2 id="advice-heading">What to do</h2>')
        < page.index(advice)
        < page.index("A Medway man")
    )
