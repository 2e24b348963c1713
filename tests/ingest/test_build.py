"""A file and a feed entry saying the same thing become the same advisory: both sources
finish through one builder (alerts.ingest.build)."""

from __future__ import annotations

import io

import feedparser

from alerts.areas import Gazetteer
from alerts.ingest.build import clean_title
from alerts.ingest.entries import entry_to_advisory
from alerts.ingest.files import parse_advisory_bytes
from tests.support import NOW

URL = "https://www.kent.police.uk/news/kent/2026/courier-fraud/"
TITLE = "Courier fraud warning | Kent Police"
BODY = "Residents of Chatham are warned about callers posing as officers."

FILE = f"""```yaml
title: {TITLE}
url: {URL}
publish:
  date: 09:00 24/11/2026
```

{BODY}
""".encode()

FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Kent Police</title><link>https://www.kent.police.uk/</link>
<description>News</description>
<item><title>{TITLE}</title><link>{URL}</link><guid>{URL}</guid>
<pubDate>Tue, 24 Nov 2026 09:00:00 +0000</pubDate><description>&lt;p&gt;{BODY}&lt;/p&gt;</description></item>
</channel></rss>
""".encode()


def test_a_file_and_a_feed_entry_with_the_same_words_make_the_same_advisory(
    gazetteer: Gazetteer,
) -> None:
    from_file = parse_advisory_bytes(FILE, "courier.md", gazetteer, now=NOW)
    [entry] = feedparser.parse(io.BytesIO(FEED)).entries
    from_feed = entry_to_advisory(
        entry, "feed entry", "https://example.org/feed", gazetteer, now=NOW, force_area=None
    )
    a, b = from_file.advisory, from_feed.advisory
    assert (a.key, a.url, a.title, a.summary, a.body_text, a.published_at, a.areas) == (
        b.key, b.url, b.title, b.summary, b.body_text, b.published_at, b.areas,
    )  # fmt: skip
    assert a.title == "Courier fraud warning" and "chatham" in a.areas
    assert from_file.warnings == from_feed.warnings == []


def test_a_title_loses_the_force_name_and_becomes_one_line() -> None:
    assert clean_title("Appeal after burglary\n | Kent Police") == "Appeal after burglary"
    assert clean_title("Appeal – Essex Constabulary") == "Appeal"
    assert clean_title("Police appeal") == "Police appeal"
    assert clean_title(" | Kent Police") == ""
