"""Five polls of a hostile feed served over loopback HTTP, as the scheduler runs them,
with one immediate subscriber and a real Maildir: the feed flaps an item between two
versions, re-issues one story under a new GUID each poll (same link) and another under
a new GUID and link (same title and text), lists a GUID twice, and claims a file
advisory's URL as its GUID. The flapping item is mailed at most twice, the others
once, nothing hijacked is mailed, and the file advisory is left as its file says."""

from __future__ import annotations

import email
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerts.app import App
from alerts.cli import cli
from alerts.clock import ManualClock
from alerts.pipeline import Plan, run_cycle
from tests.support import NOW
from tests.support.advisory_files import write_advisory
from tests.support.digests import subscribe
from tests.support.feed_server import FeedServer

POLL = Plan("poll", feeds="never", digests=())
FILE_URL = "https://www.kent.police.uk/news/medway/courier-fraud-warning/"
FILE_TITLE = "Courier fraud warning for Medway residents"
FILE_BODY = "Officers in Medway warn that police never collect bank cards. Report it on 101."
FLAP = (
    "Road closed in Chatham until 6pm after a collision",
    "Road closed in Chatham until 8pm after a collision",
)


def item(guid: str, title: str, text: str, link: str, *, permalink: bool = False) -> str:
    return (
        f"<item><guid isPermaLink='{str(permalink).lower()}'>{guid}</guid><title>{title}</title>"
        f"<link>{link}</link><description>{text}</description>"
        "<pubDate>Wed, 25 Nov 2026 09:00:00 +0000</pubDate></item>"
    )


def hostile_feed(poll: int) -> bytes:
    items = [
        item(
            "flap-1",
            "Road closure in Chatham",
            FLAP[poll % 2],
            "https://news.example/roads/chatham/",
        ),
        item(
            f"churn-{poll}",
            "Scam texts in Gillingham",
            "Texts claim to be from the council in Gillingham.",
            "https://news.example/scams/gillingham/",
        ),
        item(
            f"urn:uuid:0000000{poll}",
            "Bike thefts in Rochester",
            "Lock bikes in Rochester station.",
            f"https://news.example/bikes/rochester/?session={poll}",
        ),
        item(
            "dup-1",
            "Missing dog found in Strood",
            "The dog found in Strood is home.",
            "https://news.example/dog/",
        ),
        item(
            "dup-1",
            "HIJACKED: Strood",
            "HIJACKED: call 0900 123 456 now in Strood.",
            "https://evil.example/dog/",
        ),
        item(
            FILE_URL,
            "HIJACKED: call 0900 123 456",
            "HIJACKED: Medway residents must call 0900 123 456.",
            "https://evil.example/pay/",
            permalink=True,
        ),
    ]
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Partner news</title>"
        "<link>https://news.example/</link><description>News</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def baseline(server: FeedServer) -> None:
    """The partner feed as it was when it was added, before these stories: a feed's first
    poll is its baseline, mailed to nobody (alerts.ingest.lifecycle)."""
    server.routes["/partner.rss"] = (200, {"Content-Type": "application/rss+xml"}, EMPTY)


EMPTY = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>Partner news</title>"
    b"<link>https://news.example/</link><description>News</description></channel></rss>"
)


def hostile_setup(
    write_config: Callable[..., Path], advisory_dir: Path, server: FeedServer, **config: object
) -> App:
    """The file advisory, the hostile feed as a Medway source, one immediate subscriber."""
    write_advisory(
        advisory_dir,
        "courier",
        title=FILE_TITLE,
        url=FILE_URL,
        date="08:00 25/11/2026",
        area="Medway",
        body=FILE_BODY,
    )
    sources = [{"path": str(advisory_dir)}, {"feed": server.url("/partner.rss"), "area": "Medway"}]
    app = App(write_config(sources=sources, **config))
    subscribe(
        app, "resident@example.org", ["medway"], frequency="immediate", at=NOW - timedelta(days=1)
    )
    return app


@pytest.fixture
def app(
    write_config: Callable[..., Path], advisory_dir: Path, server: FeedServer, db_url: str
) -> Iterator[App]:
    """On SQLite and PostgreSQL."""
    app = hostile_setup(write_config, advisory_dir, server, database=db_url)
    yield app
    app.close()


@pytest.fixture
def sqlite_app(
    write_config: Callable[..., Path], advisory_dir: Path, server: FeedServer
) -> Iterator[App]:
    app = hostile_setup(write_config, advisory_dir, server)
    yield app
    app.close()


def subjects(app: App) -> list[str]:
    found = []
    for path in sorted((app.config.delivery.maildir / "new").glob("*")):
        message: Message = email.message_from_bytes(path.read_bytes())
        found.append(str(make_header(decode_header(message["Subject"]))))
    return found


def mails_about(subjects: list[str], words: str) -> int:
    return sum(words in subject for subject in subjects)


def test_five_polls_of_a_hostile_feed_mail_each_story_once_and_hijack_nothing(
    app: App, server: FeedServer
) -> None:
    baseline(server)
    run_cycle(app, POLL, now=NOW - timedelta(minutes=10))
    for poll in range(5):
        server.routes["/partner.rss"] = (
            200,
            {"Content-Type": "application/rss+xml"},
            hostile_feed(poll),
        )
        report = run_cycle(app, POLL, now=NOW + timedelta(minutes=10 * poll))
        assert not report.failed_sources, report.problems

    sent = subjects(app)
    counts = Counter(sent)
    assert mails_about(sent, "Road closure in Chatham") <= 2, counts
    assert mails_about(sent, "Scam texts in Gillingham") == 1, counts
    assert mails_about(sent, "Bike thefts in Rochester") == 1, counts
    assert mails_about(sent, "Missing dog found in Strood") == 1, counts
    assert mails_about(sent, FILE_TITLE) == 1, counts
    assert not [s for s in sent if "HIJACKED" in s], counts
    bodies = b"".join(path.read_bytes() for path in (app.config.delivery.maildir / "new").glob("*"))
    assert b"0900" not in bodies and b"evil.example" not in bodies

    kept = app.store.advisories.get(FILE_URL)
    assert (kept.title, kept.url, kept.revision) == (FILE_TITLE, FILE_URL, 1)
    assert FILE_BODY in kept.body_text and "0900" not in kept.body_text

    # The claim is noted on the file's advisory, for the operator to see.
    shown = CliRunner().invoke(
        cli, ["--config", str(app.config_path), "advisories", "show", "--json", FILE_URL]
    )
    (noted,) = json.loads(shown.stdout)["duplicates"]
    assert (noted["origin"], noted["key"], noted["title"]) == (
        server.url("/partner.rss"),
        FILE_URL,
        "HIJACKED: call 0900 123 456",
    )


@pytest.mark.slow
def test_five_runs_of_alerts_run_once_mail_each_story_once(
    sqlite_app: App, server: FeedServer, clock: ManualClock
) -> None:
    """The same through the command an operator runs from cron (feeds built too); the
    store's part runs on PostgreSQL in the test above."""
    app = sqlite_app
    baseline(server)
    clock.set(NOW - timedelta(minutes=10))
    assert (
        CliRunner().invoke(cli, ["--config", str(app.config_path), "run", "--once"]).exit_code == 0
    )
    for poll in range(5):
        server.routes["/partner.rss"] = (
            200,
            {"Content-Type": "application/rss+xml"},
            hostile_feed(poll),
        )
        clock.set(NOW + timedelta(minutes=10 * poll))
        result = CliRunner().invoke(cli, ["--config", str(app.config_path), "run", "--once"])
        assert result.exit_code == 0, result.output
    counts = Counter(subjects(app))
    assert sum(n for s, n in counts.items() if "Road closure in Chatham" in s) <= 2, counts
    for story in (
        "Scam texts in Gillingham",
        "Bike thefts in Rochester",
        "Missing dog found in Strood",
        FILE_TITLE,
    ):
        assert sum(n for s, n in counts.items() if story in s) == 1, (story, counts)
    assert not [s for s in counts if "HIJACKED" in s], counts
    assert app.store.advisories.get(FILE_URL).title == FILE_TITLE
    # The feeds built from it carry the file's advisory, not the claim.
    assert b"HIJACKED" not in (app.config.feeds.out / "medway.rss").read_bytes()
