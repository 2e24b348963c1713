"""Identity belongs to a source, and "Updated" means a material change at most once a
day: on SQLite and PostgreSQL. A source updates only what it created; the same key or
URL from another source is a duplicate noted on the first. A feed's story under a new
GUID (same link, or same title and text lately) is the same advisory. A change too
soon after the last is held and released later; a source flapping back is logged."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from alerts.store import Outcome, Store, create_db_engine, migrate, open_store
from alerts.types import FILES_ORIGIN, AdvisoryInput, Priority
from tests.store.test_store import make, save
from tests.support import NOW

FEED = "https://partner.example/news.rss"
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def from_feed(n: int = 1, **changes: object) -> AdvisoryInput:
    item = make(
        n,
        origin=FEED,
        source=FEED,
        key=f"{FEED}#guid-{n}",
        url=f"https://partner.example/news/{n}/",
    )
    return replace(item, **changes)  # type: ignore[arg-type]


# -- identity per source ---------------------------------------------------------------


def test_a_feed_entry_with_a_files_key_is_a_duplicate_noted_never_an_update(store: Store) -> None:
    original = save(store, make(1))
    hijack = from_feed(
        1, key=make(1).key, url="https://evil.example/pay/", title="HIJACKED: call 0900 123 456"
    )

    result = save(store, hijack, now=NOW + DAY)

    assert (result.outcome, result.advisory_id, result.revision) == (
        Outcome.DUPLICATE,
        original.advisory_id,
        1,
    )
    kept = store.advisories.get(original.advisory_id)
    assert (kept.title, kept.url, kept.origin, kept.updated_at) == (
        "Advisory 1",
        make(1).url,
        FILES_ORIGIN,
        NOW,
    )
    assert store.advisories.count() == 1
    (noted,) = store.advisories.duplicates_of(original.advisory_id)
    assert (noted["origin"], noted["key"], noted["url"], noted["title"]) == (
        FEED,
        make(1).key,
        "https://evil.example/pay/",
        "HIJACKED: call 0900 123 456",
    )
    # Seen again: the note is kept up to date, still nothing else changes.
    assert save(store, hijack, now=NOW + 2 * DAY).outcome is Outcome.DUPLICATE
    assert [n["last_seen_at"] for n in store.advisories.duplicates_of(original.advisory_id)] == [
        NOW + 2 * DAY
    ]


def test_the_same_url_from_another_source_is_a_duplicate_of_the_first(store: Store) -> None:
    first = save(store, from_feed(1))
    copy = make(9, url=from_feed(1).url, key=from_feed(1).url, title="The force's own copy")
    assert save(store, copy).outcome is Outcome.DUPLICATE
    assert store.advisories.get(first.advisory_id).title == "Advisory 1"
    assert [n["origin"] for n in store.advisories.duplicates_of(first.advisory_id)] == [
        FILES_ORIGIN
    ]


def test_two_feeds_may_use_the_same_bare_guid_for_different_advisories(store: Store) -> None:
    other = "https://other.example/rss"
    first = save(store, from_feed(1))
    second = save(store, from_feed(2, origin=other, source=other, key=from_feed(1).key))
    assert (
        second.outcome is Outcome.DUPLICATE and second.advisory_id == first.advisory_id
    )  # a key it did not make


def test_a_new_guid_with_the_same_link_is_the_same_advisory(store: Store) -> None:
    first = save(store, from_feed(1))
    again = save(store, from_feed(1, key=f"{FEED}#churned-1"), now=NOW + HOUR)
    assert (again.outcome, again.advisory_id) == (Outcome.UNCHANGED, first.advisory_id)
    assert store.advisories.count() == 1


def test_a_new_guid_and_link_with_the_same_title_and_text_is_the_same_advisory(
    store: Store,
) -> None:
    first = save(store, from_feed(1))
    churned = from_feed(1, key=f"{FEED}#churned-1", url="https://partner.example/news/1/?session=2")
    again = save(store, churned, now=NOW + HOUR)
    assert (again.outcome, again.advisory_id, again.revision) == (
        Outcome.UPDATED,
        first.advisory_id,
        1,
    )
    assert store.advisories.get(first.advisory_id).url.endswith(
        "?session=2"
    )  # the link moved: no mail
    # Not after the re-issue window: by then a story told again is news again.
    late = from_feed(1, key=f"{FEED}#churned-2", url="https://partner.example/news/1/?session=3")
    assert save(store, late, now=NOW + timedelta(days=31)).outcome is Outcome.NEW


def test_a_link_that_several_entries_share_does_not_make_them_one(store: Store) -> None:
    home = "https://partner.example/"
    save(store, from_feed(1, url=home, extra={"link_unique": False}))
    result = save(store, from_feed(2, url=home, extra={"link_unique": False}))
    assert result.outcome is Outcome.NEW and store.advisories.count() == 2


# -- material change, at most one update a day -------------------------------------------


def test_whitespace_markup_and_tracking_changes_are_no_new_revision(store: Store) -> None:
    body = '<p>Call <a href="https://a.example/?x=1">us</a>.</p>'
    first = save(store, make(1, body_html=body))
    cosmetic = make(
        1,
        title="Advisory  1 ",
        body_html='<p class="c">Call  <a href="https://a.example/?x=1&amp;utm_source=rss">us</a>.</p>',
    )
    result = save(store, cosmetic, now=NOW + 2 * DAY)
    assert result.revision == 1 and store.advisories.get(first.advisory_id).changed_at == NOW


def test_a_change_within_the_interval_is_held_then_released_once(store: Store) -> None:
    first = save(store, make(1))
    changed = save(store, make(1, body_html="<p>Now also in Gillingham.</p>"), now=NOW + HOUR)
    assert (changed.outcome, changed.revision) == (
        Outcome.UPDATED,
        1,
    )  # stored (feeds show it), not announced
    stored = store.advisories.get(first.advisory_id)
    assert (stored.body_html, stored.changed_at) == ("<p>Now also in Gillingham.</p>", NOW)

    assert store.advisories.release_held_updates(NOW + 23 * HOUR) == []
    assert store.advisories.release_held_updates(NOW + DAY) == [first.advisory_id]
    released = store.advisories.get(first.advisory_id)
    assert (released.revision, released.changed_at) == (2, NOW + DAY)
    assert store.advisories.release_held_updates(NOW + 3 * DAY) == []  # once


def test_a_change_after_the_interval_is_a_new_revision_at_once(store: Store) -> None:
    first = save(store, make(1))
    result = save(store, make(1, title="Advisory 1: arrest made"), now=NOW + DAY)
    assert result.revision == 2 and store.advisories.get(first.advisory_id).changed_at == NOW + DAY


def test_an_urgent_new_version_is_not_held(store: Store) -> None:
    save(store, make(1))
    urgent = make(1, title="Advisory 1: road closed now", priority=Priority.URGENT)
    assert save(store, urgent, now=NOW + HOUR).revision == 2


def test_the_interval_comes_from_the_store(db_url: str) -> None:
    store = open_store(db_url)
    store.advisories.update_interval = timedelta(0)
    try:
        save(store, make(1))
        assert save(store, make(1, title="Changed"), now=NOW + timedelta(seconds=1)).revision == 2
    finally:
        store.close()


def test_a_source_flapping_back_is_logged_and_its_hold_dropped(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first = save(store, from_feed(1))
    with caplog.at_level(logging.INFO, logger="alerts.store"):
        for poll in range(1, 5):
            version = from_feed(1, body_html="<p>Until 8pm.</p>") if poll % 2 else from_feed(1)
            save(store, version, now=NOW + poll * 10 * timedelta(minutes=1))
    flapping = [r.getMessage() for r in caplog.records if "flapping" in r.getMessage()]
    assert len(flapping) == 2 and flapping[-1] == (
        f"advisory {first.advisory_id} ({FEED}#guid-1) is flapping: {FEED} went back to the version already"
        " mailed (2 times); the change in between is not mailed"
    )
    assert store.advisories.get(first.advisory_id).revision == 1
    assert (
        store.advisories.release_held_updates(NOW + 2 * DAY) == []
    )  # it ended on the mailed version


# -- migration --------------------------------------------------------------------------


def test_existing_advisories_keep_their_keys_and_feed_ones_get_their_feed_as_origin(
    db_url: str,
) -> None:
    engine = create_db_engine(db_url)
    migrate(engine, "0001")
    columns = (
        "key, url, title, summary, body_html, body_text, content_hash, published_at, date_assumed,"
        " first_seen_at, changed_at, updated_at, revision, source, status, priority, tags, extra"
    )
    with engine.begin() as conn:
        for key, source in ((make(1).key, "advisories/1.md"), (f"{FEED}#g", FEED)):
            conn.execute(
                text(
                    f"INSERT INTO advisories ({columns}) VALUES (:key, :url, 'T', '', '', '', 'h', :at, false,"
                    " :at, :at, :at, 1, :source, 'active', 'normal', '[]', '{}')"
                ),
                {"key": key, "url": key, "source": source, "at": NOW},
            )
    migrate(engine)
    engine.dispose()
    store = open_store(db_url)
    try:
        assert [(a.key, a.origin) for a in sorted(store.advisories.find(), key=lambda a: a.id)] == [
            (make(1).key, FILES_ORIGIN),
            (f"{FEED}#g", FEED),
        ]
        # The same words again (the stored hash meant something else then): no new revision.
        again = save(
            store, make(1, title="T", summary="", body_html="", body_text=""), now=NOW + HOUR
        )
        assert again.revision == 1 and store.advisories.get(again.advisory_id).changed_at == NOW
    finally:
        store.close()
