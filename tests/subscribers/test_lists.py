"""Importing the coordinators' lists (YAML and CSV) and exporting them, on SQLite and
PostgreSQL: idempotent, PECR-safe, and every bad row named by file and line."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.store import Store, open_store
from alerts.store.subscribers import ACTIVE, PENDING, SUPPRESSED, UNSUBSCRIBED
from alerts.subscribers import make_subscription
from alerts.subscribers.lists import SubscriberListError, export_list, import_list, read_list
from alerts.types import Frequency, Subscriber
from tests.support import NOW, REPO

EXAMPLES = REPO / "subscribers"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["example.yaml", "example.csv"])
def test_the_shipped_examples_import_cleanly_and_only_use_example_org(
    store: Store, gazetteer: Gazetteer, name: str
) -> None:
    report = import_list(store, gazetteer, EXAMPLES / name, now=NOW)
    assert report.bad == [] and report.skipped == []
    assert report.added >= 3
    everyone = list(store.subscribers.iterate(status=None))
    assert everyone and all(s.email.endswith("@example.org") for s in everyone)
    active = [s for s in everyone if s.status is ACTIVE]
    assert all(s.watermark == NOW and s.confirmed_at == NOW for s in active)


def test_the_example_yaml_sets_every_column(store: Store, gazetteer: Gazetteer) -> None:
    import_list(store, gazetteer, EXAMPLES / "example.yaml", now=NOW)
    coordinator = store.subscribers.find("coordinator.medway@example.org")
    assert coordinator is not None
    assert coordinator.forwardable and coordinator.frequency is Frequency.WEEKLY
    assert (
        coordinator.areas == ("chatham", "medway")
        and coordinator.name == "Medway Neighbourhood Watch"
    )
    shop = store.subscribers.find("shopkeeper@example.org")
    assert shop is not None and not shop.urgent and shop.areas == ("tunbridge-wells",)
    moved = store.subscribers.find("moved.away@example.org")
    assert moved is not None and moved.status is UNSUBSCRIBED


@pytest.mark.parametrize("name", ["example.yaml", "example.csv"])
def test_importing_twice_changes_nothing(store: Store, gazetteer: Gazetteer, name: str) -> None:
    import_list(store, gazetteer, EXAMPLES / name, now=NOW)
    before = list(store.subscribers.iterate(status=None))
    report = import_list(store, gazetteer, EXAMPLES / name, now=NOW + timedelta(days=1))
    assert report.added == report.updated == report.kept == report.opted_out == 0
    assert report.unchanged == len(before)
    assert list(store.subscribers.iterate(status=None)) == before  # watermarks did not move


def test_import_never_reactivates_an_unsubscribed_or_suppressed_address(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    gone = store.subscribers.add(
        make_subscription(gazetteer, "gone@example.org", ["kent"]), now=NOW
    )
    store.subscribers.unsubscribe(gone.id, now=NOW)
    bounced = store.subscribers.add(
        make_subscription(gazetteer, "bounced@example.org", ["kent"]), now=NOW
    )
    store.subscribers.suppress(bounced.id, now=NOW)
    path = write(
        tmp_path,
        "list.csv",
        "email,areas,status\nGone@example.org,medway,\ngone@EXAMPLE.org,medway,active\nbounced@example.org,medway,active\n",
    )
    for flags in ({}, {"update": True}, {"pending": True}):
        report = import_list(store, gazetteer, path, now=NOW, **flags)  # type: ignore[arg-type]
        skipped = {p.where.rsplit(":", 1)[1]: f"{p.email}: {p.reason}" for p in report.skipped}
        assert set(skipped) == {"2", "4"}
        assert "was suppressed" in skipped["4"]
        # Gone@ differs only in the case of the local part: most mail systems deliver
        # both to one mailbox, so the opt-out covers it too.
        assert (
            skipped["2"]
            == "Gone@example.org: unsubscribed: not re-added (PECR); only they can subscribe again"
        )
        # And gone@EXAMPLE.org is that mailbox once more.
        assert [(p.where.rsplit(":", 1)[1], p.reason) for p in report.bad] == [
            ("3", "repeats the address on line 2")
        ]
        assert report.added == report.updated == 0
    assert store.subscribers.find("gone@example.org").status is UNSUBSCRIBED  # type: ignore[union-attr]
    assert store.subscribers.find("bounced@example.org").status is SUPPRESSED  # type: ignore[union-attr]


def test_a_list_saying_unsubscribed_stops_an_active_subscriber(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    active = store.subscribers.add(make_subscription(gazetteer, "a@example.org", ["kent"]), now=NOW)
    path = write(
        tmp_path,
        "list.yaml",
        "- {email: a@example.org, areas: [kent], status: unsubscribed}\n"
        "- {email: b@example.org, areas: kent, status: suppressed}\n",
    )
    report = import_list(store, gazetteer, path, now=NOW)
    assert report.opted_out == 2
    assert store.subscribers.find("a@example.org").status is UNSUBSCRIBED  # type: ignore[union-attr]
    assert store.subscribers.find("b@example.org").status is SUPPRESSED  # type: ignore[union-attr]
    assert active.id == store.subscribers.find("a@example.org").id  # type: ignore[union-attr]


CSV_WITH_BAD_ROWS = """\
# A list with problems. Comments do not shift the line numbers.
email,name,areas,frequency,forwardable
good.one@example.org,One,medway,daily,no
not-an-address,Two,medway,daily,no

bad.area@example.org,Three,Narnia,daily,no
"multi@example.org","A name
over two lines",dover,weekly,yes
bad.freq@example.org,Four,dover,hourly,no
bad.flag@example.org,Five,dover,daily,perhaps
too.many@example.org,Six,dover,daily,no,extra
no.area@example.org,Seven,,daily,no
GOOD.ONE@example.org,Again,kent,daily,no
good.one@EXAMPLE.ORG,Dup,kent,daily,no
"""


def test_bad_csv_rows_are_reported_by_line_and_the_rest_imported(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    path = write(tmp_path, "bad.csv", CSV_WITH_BAD_ROWS)
    report = import_list(store, gazetteer, path, now=NOW)
    bad = {p.where.rsplit(":", 1)[1]: str(p) for p in report.bad}
    assert set(bad) == {"4", "6", "9", "10", "11", "12", "13", "14"}
    assert all(text.startswith(f"{path}:") for text in bad.values())
    assert "not a valid email address" in bad["4"]
    assert "unknown area 'Narnia'" in bad["6"]
    assert "unknown frequency 'hourly'" in bad["9"]
    assert "forwardable must be yes or no" in bad["10"]
    assert "6 values for 5 columns" in bad["11"]
    assert "at least one area" in bad["12"]
    # One mailbox however it is spelled: GOOD.ONE@ is good.one@ again.
    assert (
        "repeats the address on line 3" in bad["13"]
        and "repeats the address on line 3" in bad["14"]
    )
    assert report.added == 2  # good.one, multi (a quoted name over two lines)
    multi = store.subscribers.find("multi@example.org")
    assert multi is not None and multi.name == "A name over two lines" and multi.forwardable


YAML_WITH_BAD_ROWS = """\
# comment
subscribers:
  - email: fine@example.org
    areas: [medway]
  - email: broken@
    areas: [medway]
  - just-a-string-address@example.org
  - email: x@example.org
    areas: [kent]
    colour: blue
  - [not, a, mapping]
  - email: y@example.org
    areas: [Atlantis]
"""


def test_bad_yaml_rows_are_reported_by_line_and_the_rest_imported(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    path = write(tmp_path, "bad.yaml", YAML_WITH_BAD_ROWS)
    report = import_list(store, gazetteer, path, now=NOW)
    bad = {p.where: p.reason for p in report.bad}
    assert list(bad) == [f"{path}:5", f"{path}:7", f"{path}:8", f"{path}:11", f"{path}:12"]
    assert "not a valid email address" in bad[f"{path}:5"]
    assert "at least one area" in bad[f"{path}:7"]  # a bare address, but no area
    assert "unknown key 'colour'" in bad[f"{path}:8"]
    assert "must be an address or a mapping" in bad[f"{path}:11"]
    assert "unknown area 'Atlantis'" in bad[f"{path}:12"]
    assert report.added == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("list.txt", "a@example.org\n", "unknown list format"),
        ("list.csv", "email,colour\na@example.org,blue\n", "unknown column 'colour'"),
        ("list.csv", "name,areas\nA,kent\n", "no 'email' column"),
        ("list.yaml", "subscribers:\n  - email: [unclosed\n", "invalid YAML"),
        ("list.yaml", "people: []\n", "'subscribers:' list"),
        ("list.yaml", "subscribers: 3\n", "must be a list"),
    ],
)
def test_an_unreadable_list_is_one_error_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(SubscriberListError, match=message) as caught:
        list(read_list(path))
    assert str(path) in str(caught.value)


def test_a_missing_list_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SubscriberListError, match="file not found"):
        read_list(tmp_path / "nope.csv")


def test_existing_subscribers_keep_their_own_choices_unless_update(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    store.subscribers.add(
        make_subscription(gazetteer, "a@example.org", ["dover"], frequency="weekly"), now=NOW
    )
    path = write(tmp_path, "list.csv", "email,areas,frequency\na@example.org,medway,daily\n")
    report = import_list(store, gazetteer, path, now=NOW)
    assert report.kept == 1
    assert store.subscribers.find("a@example.org").frequency is Frequency.WEEKLY  # type: ignore[union-attr]
    report = import_list(store, gazetteer, path, now=NOW, update=True)
    assert report.updated == 1
    after = store.subscribers.find("a@example.org")
    assert after is not None and after.areas == ("medway",) and after.frequency is Frequency.DAILY
    assert after.status is ACTIVE and after.watermark == NOW


def test_a_pending_import_asks_each_new_address_to_confirm(
    store: Store, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    path = write(tmp_path, "list.csv", "email,areas\nnew@example.org,kent\n")
    asked: list[Subscriber] = []
    report = import_list(store, gazetteer, path, now=NOW, pending=True, on_pending=asked.append)
    assert report.added == 1
    assert [s.email for s in asked] == ["new@example.org"]
    assert asked[0].status is PENDING and asked[0].watermark is None
    import_list(store, gazetteer, path, now=NOW, pending=True, on_pending=asked.append)
    assert len(asked) == 1  # nobody is asked twice


@pytest.mark.parametrize("fmt", ["csv", "yaml"])
def test_an_export_imports_into_a_fresh_store_with_its_do_not_mail_rows(
    store: Store, gazetteer: Gazetteer, tmp_path: Path, fmt: str
) -> None:
    import_list(store, gazetteer, EXAMPLES / "example.yaml", now=NOW)
    import_list(store, gazetteer, EXAMPLES / "example.csv", now=NOW)
    out = io.StringIO()
    assert export_list(store, out, fmt=fmt) == 7
    path = write(tmp_path, f"export.{fmt}", out.getvalue())
    target = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    report = import_list(target, gazetteer, path, now=NOW)
    assert report.bad == [] and report.added == 6 and report.opted_out == 1

    def shape(s: Subscriber) -> tuple[object, ...]:
        return (s.email, s.name, s.areas, s.frequency, s.status, s.forwardable, s.urgent)

    assert [shape(s) for s in target.subscribers.iterate(status=None)] == [
        shape(s) for s in store.subscribers.iterate(status=None)
    ]
    target.close()


def test_an_export_of_nobody_is_still_a_valid_list(store: Store, tmp_path: Path) -> None:
    for fmt in ("csv", "yaml"):
        out = io.StringIO()
        assert export_list(store, out, fmt=fmt) == 0
        assert list(read_list(write(tmp_path, f"empty.{fmt}", out.getvalue()))) == []
