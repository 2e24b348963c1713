"""Who an advisory reaches is decided once, stored and explained: 'alerts advisories
show' gives each area with the words that decided it and the places discounted, an
advisory outside coverage is in no feed, digest or area page, and an operator's retag
is kept through re-ingest and source changes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.digest.queue import queue_digests
from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from alerts.types import Frequency
from alerts.web import create_app
from tests.support import NOW, SAMPLE
from tests.support.digests import subscribe

Run = Callable[..., Result]


def advisory(
    path: Path, title: str, *paragraphs: str, area: object = "Kent", force: str = "Kent Police"
) -> Path:
    front = {
        "area": area,
        "publish": {"date": (NOW - timedelta(hours=2)).strftime("%H:%M %d/%m/%Y")},
        "title": f"{title} | {force}",
        "url": f"https://www.kent.police.uk/news/{path.stem}/",
    }
    text = (
        "```yaml\n"
        + yaml.safe_dump(front, allow_unicode=True)
        + "```\n\n"
        + "\n\n".join(paragraphs)
        + "\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str, clock: ManualClock) -> Iterator[App]:
    app = App(write_config(database=db_url))
    clock.set(NOW)
    yield app
    app.close()


def only_id(app: App) -> int:
    [item] = app.store.advisories.find(include_outside=True)
    return item.id


def test_show_lists_each_area_with_the_words_that_decided_it(run_cli: Run) -> None:
    assert run_cli("ingest", str(SAMPLE)).exit_code == 0
    shown = run_cli("advisories", "show", "1").output
    assert "Reaches:    Medway" in shown
    assert (
        "Medway: a victim's home: “…be from Kent Police and defrauded a Medway man of money” (summary)"
        in shown
    )
    data = json.loads(run_cli("advisories", "show", "1", "--json").output)
    assert data["decision"]["areas"] == ["medway"] and data["outside_coverage"] is False


def test_show_lists_the_places_discounted_with_the_reason(run_cli: Run, advisory_dir: Path) -> None:
    path = advisory(
        advisory_dir / "deal.md",
        "Arrest after burglary in Deal",
        "A man from Sandwich was arrested after a burglary in Deal.",
        "He will appear at Medway Magistrates’ Court.",
    )
    run_cli("ingest", str(path))
    shown = run_cli("advisories", "show", "1").output
    assert "Reaches:    Deal" in shown
    assert "Places discounted:" in shown
    assert "  Sandwich: a suspect's home: “A man from Sandwich was arrested" in shown
    assert "  Medway: a court: " in shown


def test_an_advisory_outside_coverage_is_stored_but_in_no_feed_digest_or_area_page(
    app: App, tmp_path: Path
) -> None:
    advisory_dir = tmp_path / "incoming"
    advisory_dir.mkdir()
    advisory(
        advisory_dir / "essex.md",
        "Appeal after van stolen in Rainham",
        "A van was stolen in Rainham.",
        area="Essex",
        force="Essex Police",
    )
    advisory(
        advisory_dir / "chatham.md",
        "Appeal after theft in Chatham",
        "A bike was stolen in Chatham.",
    )
    subscribe(
        app, "everyone@example.org", ["kent"], frequency=Frequency.DAILY, at=NOW - timedelta(days=1)
    )
    report = ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW - timedelta(hours=1))
    assert len(report.new) == 2 and len(report.outside_coverage) == 1
    stored = app.store.advisories.find(include_outside=True)
    [essex] = [item for item in stored if item.outside_coverage]
    assert essex.areas == () and essex.decision is not None and essex.decision.unknown == ("Essex",)
    assert [item.title for item in app.store.advisories.find()] == ["Appeal after theft in Chatham"]
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)
    feeds = app.config.feeds.out
    assert all(
        "van stolen" not in path.read_text(encoding="utf-8")
        for path in feeds.iterdir()
        if path.is_file()
    )
    assert "Chatham" in (feeds / "all.rss").read_text(encoding="utf-8")
    queued = queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.DAILY, now=NOW
    )
    assert queued.messages == 1
    client = TestClient(create_app(app))
    for page in ("/", "/areas/kent", "/areas/medway"):
        assert "van stolen" not in client.get(page).text, page
    assert client.get(f"/advisories/{essex.id}").status_code == 404


def test_a_retag_overrides_the_rule_and_survives_reingest_of_the_unchanged_source(
    run_cli: Run, advisory_dir: Path
) -> None:
    path = advisory(
        advisory_dir / "scam.md", "Scam calls in Chatham", "Residents in Chatham received calls."
    )
    run_cli("ingest", str(path))
    result = run_cli("advisories", "retag", "1", "--area", "Swale", "--area", "ME4")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Advisory 1 now reaches Chatham, Swale (was Chatham), until 'alerts advisories retag 1 --auto'."
    )
    again = run_cli("ingest", str(path))
    assert "0 new, 0 updated, 1 unchanged" in again.output
    listed = json.loads(run_cli("advisories", "list", "--json").output)
    assert listed[0]["areas"] == ["chatham", "swale"] and listed[0]["area_override"] == [
        "chatham",
        "swale",
    ]
    shown = run_cli("advisories", "show", "1").output
    assert "Reaches:    Chatham, Swale: set by the operator" in shown
    assert "--area" not in shown and "[retagged]" in run_cli("advisories", "list").output


def test_a_retag_is_kept_and_shown_beside_the_rules_new_decision_when_the_source_changes(
    run_cli: Run, advisory_dir: Path
) -> None:
    path = advisory(
        advisory_dir / "scam.md", "Scam calls in Chatham", "Residents in Chatham received calls."
    )
    run_cli("ingest", str(path))
    run_cli("advisories", "retag", "1", "--area", "medway")
    advisory(
        path.parent / "scam.md",
        "Scam calls in Chatham and Dover",
        "Residents in Chatham and Dover received calls.",
    )
    assert "1 updated" in run_cli("ingest", str(path)).output
    data = json.loads(run_cli("advisories", "show", "1", "--json").output)
    assert data["areas"] == ["medway"] and data["area_override"] == ["medway"]
    assert data["decision"]["areas"] == ["chatham", "dover"]
    shown = run_cli("advisories", "show", "1").output
    assert "Reaches:    Medway: set by the operator" in shown
    assert (
        "The area rule, on the current text, says:" in shown
        and "  Reaches:    Chatham, Dover" in shown
    )


def test_retag_auto_hands_the_advisory_back_to_the_rule(run_cli: Run, advisory_dir: Path) -> None:
    path = advisory(
        advisory_dir / "scam.md", "Scam calls in Chatham", "Residents in Chatham received calls."
    )
    run_cli("ingest", str(path))
    run_cli("advisories", "retag", "1", "--outside")
    assert json.loads(run_cli("advisories", "list", "--json").output)[0]["outside_coverage"] is True
    assert run_cli("advisories", "list", "--area", "chatham").output.startswith("No advisories.")
    result = run_cli("advisories", "retag", "1", "--auto")
    assert (
        result.output.strip()
        == "Advisory 1 now reaches Chatham (was nobody), as the area rule decided."
    )
    assert json.loads(run_cli("advisories", "list", "--json").output)[0]["area_override"] is None


def test_retag_brings_an_outside_advisory_to_the_subscribers_it_now_concerns(
    app: App,
    tmp_path: Path,
    run_cli: Run,
    write_config: Callable[..., Path],
    clock: ManualClock,
) -> None:
    advisory_dir = tmp_path / "incoming"
    advisory_dir.mkdir()
    advisory(
        advisory_dir / "national.md",
        "Fake parcel texts",
        "Thousands of reports.",
        area="National",
        force="Kent Police",
    )
    subscribe(
        app, "dover@example.org", ["dover"], frequency=Frequency.DAILY, at=NOW - timedelta(days=1)
    )
    ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW - timedelta(hours=1))
    assert (
        queue_digests(
            app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.DAILY, now=NOW
        ).messages
        == 0
    )
    advisory_id = only_id(app)
    mine = write_config(database=app.config.database)  # config_path's fixture rewrote the file
    clock.set(NOW + timedelta(hours=1))
    assert (
        run_cli("advisories", "retag", str(advisory_id), "--area", "kent", config=mine).exit_code
        == 0
    )
    later = NOW + timedelta(days=1)
    assert (
        queue_digests(
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            Frequency.DAILY,
            now=later,
        ).messages
        == 1
    )
    assert (
        queue_digests(
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            Frequency.DAILY,
            now=later + timedelta(days=1),
        ).messages
        == 0
    )


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--area", "medway", "--auto"),
        ("--outside", "--auto"),
        ("--area", "medway", "--outside"),
    ],
)
def test_retag_takes_exactly_one_of_area_outside_or_auto(
    run_cli: Run, args: tuple[str, ...]
) -> None:
    run_cli("ingest", str(SAMPLE))
    result = run_cli("advisories", "retag", "1", *args)
    assert result.exit_code == 2
    assert "give --area (once or more), --outside or --auto" in result.output


def test_retag_of_an_unknown_area_names_it(run_cli: Run) -> None:
    run_cli("ingest", str(SAMPLE))
    result = run_cli("advisories", "retag", "1", "--area", "Narnia")
    assert result.exit_code == 2 and "unknown area 'Narnia'" in result.output
