"""The flood guard: however many advisories arrive, a subscriber gets at most a few
separate alerts in any hour; the rest come gathered in one message when the hour is up.
Through the real stages: a feed served over loopback HTTP, the pipeline, an aiosmtpd
relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.digest import queue_digests
from alerts.digest.guard import Limits, Recent, split_entries
from alerts.digest.plan import Entry
from alerts.pipeline import ONCE, run_cycle
from alerts.testing import SmtpSink
from alerts.types import Frequency, Priority
from tests.support import NOW
from tests.support.digests import advisory, save, subscribe
from tests.support.feed_server import serve_feeds
from tests.support.sections import make_stages

HOUR = timedelta(hours=1)
#: The whole pipeline but the feed files (327 of them per run, not what is tested here).
MAIL = replace(ONCE, feeds="never")
LIMITS = Limits(alerts=4, urgent=10)


def entries(*ids: int, held: tuple[int, ...] = ()) -> list[Entry]:
    return [Entry(i, 1, updated=False, held=i in held) for i in ids]


def ids(found: list[Entry]) -> list[int]:
    return [entry.advisory_id for entry in found]


# -- the rule, as plain data ----------------------------------------------------------


def test_alerts_within_the_limit_each_go_on_their_own() -> None:
    split = split_entries(entries(1, 2, 3), set(), Recent(alerts=1), LIMITS)
    assert ids(split.singles) == [1, 2, 3] and not split.gathered and not split.held


def test_alerts_past_the_limit_are_held_and_the_first_go_at_once() -> None:
    split = split_entries(entries(*range(1, 301)), set(), Recent(), LIMITS)
    assert ids(split.singles) == [1, 2, 3, 4]
    assert ids(split.held) == list(range(5, 301)) and not split.gathered


def test_with_no_slot_free_everything_new_waits() -> None:
    split = split_entries(entries(7, 8), set(), Recent(alerts=4), LIMITS)
    assert ids(split.held) == [7, 8] and not split.singles and not split.gathered


def test_once_a_slot_frees_the_held_and_the_new_are_gathered_in_one_message() -> None:
    split = split_entries(entries(9, 5, 6, held=(5, 6)), set(), Recent(alerts=3), LIMITS)
    assert ids(split.gathered) == [9, 5, 6] and not split.singles and not split.held


def test_urgent_alerts_have_their_own_larger_limit() -> None:
    urgent = set(range(1, 13))
    split = split_entries(entries(*range(1, 13)), urgent, Recent(alerts=4, urgent=0), LIMITS)
    assert ids(split.singles) == list(range(1, 11))
    # Past the urgent limit, with no alert slot free, they wait like the rest.
    assert ids(split.held) == [11, 12]


def test_held_urgent_alerts_are_gathered_not_sent_again_one_by_one() -> None:
    split = split_entries(entries(3, held=(3,)), {3}, Recent(), LIMITS)
    assert ids(split.gathered) == [3] and not split.singles


# -- through the stages ---------------------------------------------------------------


def rss(items: list[tuple[str, str]], published: datetime) -> bytes:
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<description>Advice for residents about {escape(title)}.</description>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for title, link in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Flood</title>'
        f"<link>https://flood.example/</link><description>A feed gone wrong</description>{body}</channel></rss>"
    ).encode()


def batch(start: int, count: int) -> list[tuple[str, str]]:
    return [
        (f"Flood advisory {i}", f"https://flood.example/news/{i}")
        for i in range(start, start + count)
    ]


def test_a_feed_bringing_300_new_advisories_at_each_of_two_polls_sends_an_immediate_subscriber_at_most_10_messages(
    write_config: Callable[..., Path], clock: ManualClock
) -> None:
    with serve_feeds() as server, SmtpSink() as sink:
        path = "/flood.rss"
        app = App(
            write_config(
                # The flood guard alone: no surge held (tests/test_source_surges.py has both).
                sources=[{"feed": server.url(path), "area": "kent", "surge_limit": 0}],
                delivery={
                    "backend": "smtp",
                    "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
                },
                email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
            )
        )
        try:
            subscribe(
                app, "ann@example.org", ["chatham"], frequency=Frequency.IMMEDIATE, at=NOW - HOUR
            )
            headers = {"Content-Type": "application/rss+xml"}
            # The feed's first poll is its baseline, mailed to nobody.
            server.routes[path] = (
                200,
                headers,
                rss(batch(1000, 1), clock.now() - timedelta(days=1)),
            )
            assert run_cycle(app, MAIL).new == 1
            clock.advance(timedelta(minutes=10))
            for poll in range(2):
                server.routes[path] = (
                    200,
                    headers,
                    rss(batch(poll * 300, 300), clock.now() - timedelta(minutes=5)),
                )
                report = run_cycle(app, MAIL)
                assert report.new == 300, report.problems
                clock.advance(timedelta(minutes=10))
            assert sink.count == 4
            # The hour is up: one message gathers the rest, each title with its link.
            clock.advance(HOUR)
            run_cycle(app, replace(MAIL, ingest=False))
            clock.advance(HOUR)
            run_cycle(app, replace(MAIL, ingest=False))
        finally:
            app.close()
    assert sink.count <= 10
    assert sink.count == 5
    subjects = [got.message()["Subject"] for got in sink.received]
    assert subjects[-1] == "596 more alerts for Chatham"
    text = sink.received[-1].message().get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "Flood advisory 599" in content and "https://flood.example/news/599" in content


def test_a_gathered_message_is_rendered_once_for_all_who_share_its_areas_and_alerts(
    tmp_path: Path, db_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    stages = make_stages(tmp_path, db_url, clock, gazetteer)
    try:
        for i in range(6):
            save(stages, advisory(f"a{i}", areas=("medway",)), at=NOW - timedelta(minutes=30))
        for name in ("ann", "bob", "cat"):
            subscribe(stages, f"{name}@example.org", ["chatham"], frequency=Frequency.IMMEDIATE)
        first = queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW,
        )
        assert (first.messages, first.rendered, first.held_subscribers, first.held) == (12, 4, 3, 6)

        later = queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW + HOUR,
        )
    finally:
        stages.close()
    assert (later.messages, later.rendered, later.held) == (3, 1, 0)


def test_an_urgent_alert_goes_at_once_when_ordinary_ones_are_held(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    stages = make_stages(tmp_path, sqlite_url, clock, gazetteer)
    try:
        for i in range(5):
            save(stages, advisory(f"a{i}", areas=("medway",)), at=NOW - timedelta(minutes=30))
        subscribe(stages, "ann@example.org", ["chatham"], frequency=Frequency.IMMEDIATE)
        assert (
            queue_digests(
                stages.mail,
                stages.digests,
                stages.store,
                stages.gazetteer,
                Frequency.IMMEDIATE,
                now=NOW,
            ).messages
            == 4
        )
        save(
            stages,
            advisory("urgent", areas=("medway",), priority=Priority.URGENT),
            at=NOW + timedelta(minutes=1),
        )
        report = queue_digests(
            stages.mail,
            stages.digests,
            stages.store,
            stages.gazetteer,
            Frequency.IMMEDIATE,
            now=NOW + timedelta(minutes=2),
        )
    finally:
        stages.close()
    assert report.messages == 1 and report.held == 1
