"""Whatever text an advisory carries, every feed format stays well-formed and its title,
id and dates round-trip through a real reader (property tests, no database)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import feedparser
from feedparser.html import _cp1252
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from alerts.areas import load_gazetteer
from alerts.feeds.model import Feed, build_entry
from alerts.feeds.render import render_atom, render_json, render_rss
from alerts.types import Advisory, Priority, Status
from tests.support import utc_of

GAZETTEER = load_gazetteer("kent")
BASE = "https://alerts.example.org"
# Any text at all, control characters, markup and CDATA terminators included.
WILD = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["<", ">", "&", "]]>", "<b>", "\x00", "\x0b", "\r", "\n", "\u2028"]),
    ),
    max_size=12,
).map("".join)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


def advisory(title: str, summary: str, body: str, key: str, published: datetime) -> Advisory:
    return Advisory(
        id=7,
        key=key,
        url="https://www.kent.police.uk/news/7/",
        title=title,
        summary=summary,
        body_html=body,
        body_text="",
        published_at=published,
        first_seen_at=published,
        changed_at=published,
        updated_at=published + timedelta(hours=1),
        revision=1,
        source="test",
        areas=("medway",),
        tags=("medway",),
        force_area="kent",
        image_url=None,
        status=Status.ACTIVE,
        priority=Priority.NORMAL,
        expires_at=None,
        extra={},
    )


def as_feedparser_reads(text: str) -> str:
    """feedparser "repairs" text that looks like UTF-8 misread as Latin-1 ("Â¡" becomes
    "¡") and maps C1 code points to cp1252's: its quirk, not the feed's (lxml reads the
    text as written), so the round trip allows for it."""
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=WILD, summary=WILD, body=WILD, key=WILD.filter(str.strip), published=MOMENTS)
def test_any_text_gives_well_formed_feeds_that_round_trip(
    title: str, summary: str, body: str, key: str, published: datetime
) -> None:
    entry = build_entry(advisory(title, summary, body, key, published), GAZETTEER, BASE)
    feed = Feed(
        slug="medway",
        title="Alerts: Medway",
        subtitle="Medway",
        base_url=BASE,
        home_url=f"{BASE}/areas/medway",
        updated=entry.updated,
        language="en-GB",
        publisher="Kent Police",
        entries=(entry,),
    )
    assert "\n" not in entry.title and "\r" not in entry.title
    for raw in (render_rss(feed), render_atom(feed)):
        etree.fromstring(raw)  # strict: raises on anything ill-formed
        parsed = feedparser.parse(raw)
        assert not parsed.bozo, parsed.get("bozo_exception")
        (read,) = parsed.entries
        assert read.id == entry.id
        assert read.get("title", "") == as_feedparser_reads(entry.title.strip())
        assert utc_of(read.published_parsed) == published
    item = json.loads(render_json(feed))["items"][0]
    assert item["id"] == entry.id and item["title"] == entry.title
