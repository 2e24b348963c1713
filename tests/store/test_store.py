"""The advisory store on SQLite and PostgreSQL: saving, identity, updates, and the
queries later stages rely on (areas by the matching rule, since, watermark, live)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from alerts.areas import Gazetteer
from alerts.errors import NotFound
from alerts.store import IngestResult, Outcome, Store, StoreError, open_store
from alerts.types import AdvisoryInput, Priority, Status
from tests.support import NOW

BST = timezone(timedelta(hours=1))


def make(n: int = 1, /, **changes: Any) -> AdvisoryInput:
    item = AdvisoryInput(
        key=f"https://www.kent.police.uk/news/{n}/",
        url=f"https://www.kent.police.uk/news/{n}/",
        title=f"Advisory {n}",
        summary=f"Summary {n}",
        body_html=f"<p>Body {n}</p>",
        body_text=f"Body {n}",
        published_at=datetime(2020, 7, 1, 12, 0, tzinfo=BST) + timedelta(days=n),
        source=f"advisories/{n}.md",
        areas=frozenset({"kent", "medway"}),
        force_area="kent",
    )
    return replace(item, **changes)


def save(
    store: Store, item: AdvisoryInput, areas: set[str] | None = None, now: datetime = NOW
) -> IngestResult:
    return store.advisories.save(item, areas if areas is not None else {"medway"}, now)


def test_new_advisory_round_trips_with_aware_utc_datetimes(store: Store) -> None:
    result = save(store, make(extra={"category": "fraud", "n": [1, 2.5, None, True]}))
    assert (result.outcome, result.revision) == (Outcome.NEW, 1)
    item = store.advisories.get(result.advisory_id)
    assert item.published_at == datetime(2020, 7, 2, 11, 0, tzinfo=UTC)
    assert item.published_at.tzinfo is not None
    assert item.published_at.utcoffset() == timedelta(0)
    assert (item.first_seen_at, item.changed_at, item.updated_at) == (NOW, NOW, NOW)
    assert item.areas == ("medway",)
    assert item.tags == ("kent", "medway")
    assert item.extra == {"category": "fraud", "n": [1, 2.5, None, True]}
    assert (item.status, item.priority, item.force_area) == (Status.ACTIVE, Priority.NORMAL, "kent")


def test_extra_values_json_cannot_hold_are_stored_as_text(store: Store) -> None:
    result = save(
        store, make(extra={"nan": math.nan, "when": datetime(2020, 1, 2, tzinfo=UTC), "set": {1}})
    )
    extra = store.advisories.get(result.advisory_id).extra
    assert extra == {"nan": "nan", "when": "2020-01-02T00:00:00+00:00", "set": "{1}"}


def test_saving_the_same_advisory_again_changes_nothing(store: Store) -> None:
    first = save(store, make())
    again = save(store, make(source="elsewhere.md"), now=NOW + timedelta(hours=1))
    assert (again.outcome, again.advisory_id, again.revision) == (
        Outcome.UNCHANGED,
        first.advisory_id,
        1,
    )
    assert store.advisories.get(first.advisory_id).updated_at == NOW


@pytest.mark.parametrize("field", ["title", "summary", "body_html"])
def test_material_change_bumps_revision_and_changed_at(store: Store, field: str) -> None:
    first = save(store, make())
    later = NOW + timedelta(days=1)
    result = save(store, make(**{field: "changed"}), now=later)
    assert (result.outcome, result.advisory_id, result.revision) == (
        Outcome.UPDATED,
        first.advisory_id,
        2,
    )
    item = store.advisories.get(first.advisory_id)
    assert (item.revision, item.first_seen_at, item.changed_at, item.updated_at) == (
        2,
        NOW,
        later,
        later,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"status": Status.WITHDRAWN},
        {"priority": Priority.URGENT},
        {"expires_at": NOW + timedelta(days=3)},
        {"image_url": "https://img.example/x.jpg"},
    ],
)
def test_non_material_change_updates_without_a_new_revision(
    store: Store, changes: dict[str, object]
) -> None:
    first = save(store, make())
    later = NOW + timedelta(days=1)
    result = save(store, make(**changes), now=later)
    assert (result.outcome, result.revision) == (Outcome.UPDATED, 1)
    item = store.advisories.get(first.advisory_id)
    assert (item.changed_at, item.updated_at) == (NOW, later)
    for name, value in changes.items():
        assert getattr(item, name) == value


def test_changed_areas_alone_are_an_update_without_a_new_revision(store: Store) -> None:
    first = save(store, make())
    result = save(store, make(), areas={"dover"}, now=NOW + timedelta(hours=1))
    assert (result.outcome, result.revision) == (Outcome.UPDATED, 1)
    assert store.advisories.get(first.advisory_id).areas == ("dover",)


def test_an_assumed_date_keeps_the_first_one(store: Store) -> None:
    first = save(store, make(published_at=NOW, date_assumed=True))
    later = NOW + timedelta(days=2)
    again = save(store, make(published_at=later, date_assumed=True), now=later)
    assert again.outcome is Outcome.UNCHANGED
    assert store.advisories.get(first.advisory_id).published_at == NOW


def test_advisory_by_id_key_or_url(store: Store) -> None:
    plain = save(store, make(1))
    guid = save(store, make(2, key="kent-guid-2"))
    assert store.advisories.get(plain.advisory_id).id == plain.advisory_id
    assert store.advisories.get(str(plain.advisory_id)).id == plain.advisory_id
    assert store.advisories.get("https://www.kent.police.uk/news/1/").id == plain.advisory_id
    assert store.advisories.get("kent-guid-2").id == guid.advisory_id
    assert store.advisories.get("https://www.kent.police.uk/news/2/").id == guid.advisory_id


@pytest.mark.parametrize(
    "ref", [999, "999", "99999999999999999999", "https://nowhere.example/", "nope"]
)
def test_unknown_advisory_is_not_found_with_a_hint(store: Store, ref: int | str) -> None:
    save(store, make())
    with pytest.raises(NotFound) as info:
        store.advisories.get(ref)
    assert info.value.hint is not None
    assert "alerts advisories list" in info.value.hint


def test_advisories_by_area_follow_the_matching_rule(store: Store, gazetteer: Gazetteer) -> None:
    medway = save(store, make(1), {"medway"}).advisory_id
    chatham = save(store, make(2), {"chatham"}).advisory_id
    kent = save(store, make(3), {"kent"}).advisory_id
    dover = save(store, make(4), {"dover"}).advisory_id

    def ids(area: str) -> set[int]:
        return {a.id for a in store.advisories.find(areas=gazetteer.matching_areas([area]))}

    assert ids("chatham") == {medway, chatham, kent}
    assert ids("medway") == {medway, chatham, kent}
    assert ids("me4") == {medway, chatham, kent}
    assert ids("dover") == {kent, dover}
    assert ids("kent") == {medway, chatham, kent, dover}
    assert store.advisories.find(areas=[]) == []


def test_advisories_newest_first_with_since_changed_since_and_limit(store: Store) -> None:
    ids = [save(store, make(n), now=NOW + timedelta(minutes=n)).advisory_id for n in (1, 2, 3)]
    assert [a.id for a in store.advisories.find()] == ids[::-1]
    assert [a.id for a in store.advisories.find(limit=2)] == ids[:0:-1]
    since = datetime(2020, 7, 3, 11, 0, tzinfo=UTC)  # exactly advisory 2's publication
    assert [a.id for a in store.advisories.find(since=since)] == [ids[2], ids[1]]
    assert [a.id for a in store.advisories.find(changed_since=NOW + timedelta(minutes=2))] == [
        ids[2]
    ]


def test_live_at_leaves_out_withdrawn_and_expired(store: Store) -> None:
    live = save(store, make(1, expires_at=NOW + timedelta(days=1))).advisory_id
    save(store, make(2, status=Status.WITHDRAWN))
    save(store, make(3, expires_at=NOW))
    forever = save(store, make(4)).advisory_id
    assert [a.id for a in store.advisories.find(live_at=NOW)] == [forever, live]


def test_count_advisories(store: Store) -> None:
    assert store.advisories.count() == 0
    save(store, make(1))
    save(store, make(2))
    assert store.advisories.count() == 2


def test_unreachable_database_is_a_store_error_naming_the_setting() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    assert info.value.where == "database"
    assert info.value.hint is not None
    assert "config.yaml" in info.value.hint


def test_threads_opening_the_store_at_once_migrate_it_once(config_path: Path) -> None:
    """The web app and the sender threads share one App; the first use races."""
    import threading

    from alerts.app import App

    app = App(config_path)
    barrier = threading.Barrier(4)
    stores: list[object] = []
    errors: list[BaseException] = []

    def use() -> None:
        barrier.wait()
        try:
            stores.append(app.store)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app.close()
    assert not errors
    assert len({id(store) for store in stores}) == 1
