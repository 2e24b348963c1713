"""Authoring safety: a file copied from an old advisory whose author forgot to change its
``url:`` does not silently replace the old one; it is held, named, and released or fixed
by the operator, as the operator would do it (files in the folder, the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import Result

from alerts.clock import ManualClock
from alerts.replacement import looks_like_replacement
from tests.support import NOW
from tests.support.advisory_files import write_advisory

OLD = datetime(2020, 12, 18, 14, 30, tzinfo=UTC)
SAMPLE_URL = (
    "https://www.kent.police.uk/news/kent/news2/policing-news/2012/"
    "safety-advice-after-telephone-fraudster-poses-as-kent-police-officer/"
)
SAMPLE_TEXT = "Fraud investigators are reminding residents of safety advice after a cold caller defrauded a Medway man."


def test_a_copy_turned_into_another_advisory_looks_like_a_replacement() -> None:
    assert looks_like_replacement(
        "Safety advice after telephone fraudster poses as Kent Police officer",
        SAMPLE_TEXT,
        OLD,
        "Road closed in Sittingbourne for resurfacing",
        "The A2 through Sittingbourne will be closed overnight for resurfacing works until Friday.",
        NOW,
    )


def test_an_update_of_the_same_story_is_not_a_replacement() -> None:
    # "Missing man found": the title keeps its words, and it comes within days.
    missing = "Concern for missing man from Margate"
    text = "Officers are concerned for the welfare of Peter, 54, missing from Margate since Monday."
    found = "Missing man from Margate found safe"
    update = "Peter, 54, who was reported missing from Margate, has been found safe and well."
    assert not looks_like_replacement(missing, text, NOW - timedelta(days=2), found, update, NOW)
    # Even with every word new, a story re-told within a few days is an update.
    assert not looks_like_replacement(
        missing, text, NOW - timedelta(days=2), "Road closed", "Resurfacing.", NOW
    )
    # The same title with a new date and new text: an update (a re-issued appeal).
    assert not looks_like_replacement(missing, text, OLD, missing, "Resurfacing of the A2.", NOW)


def test_a_file_that_takes_an_old_advisorys_url_is_held_named_and_the_old_one_stays(
    run_cli: Callable[..., Result], advisory_dir: Path
) -> None:
    assert run_cli("ingest").exit_code == 0  # the 2020 sample: advisory 1
    write_advisory(
        advisory_dir,
        "copied",
        title="Road closed in Sittingbourne for resurfacing",
        url=SAMPLE_URL,
        date=f"{NOW - timedelta(hours=2):%H:%M %d/%m/%Y}",
        body="The A2 through Sittingbourne will be closed overnight for resurfacing works until Friday.",
    )

    ran = run_cli("run", "--once")
    again = run_cli("run", "--once")

    assert ran.exit_code == 0, ran.output
    warning = (
        f"{advisory_dir / 'copied.md'} replaces advisory 1 'Safety advice after telephone…'"
        " from 2020, held as advisory 2: give a new advisory its own url, or 'alerts advisories release 2'"
    )
    assert warning in ran.output
    assert "replaces advisory 1" not in again.output  # said once, not at every poll
    old = json.loads(run_cli("advisories", "show", "--json", "1").stdout)
    assert old["title"] == "Safety advice after telephone fraudster poses as Kent Police officer"
    held = json.loads(run_cli("advisories", "show", "--json", "2").stdout)
    assert (held["hold"], held["hold_detail"]["replaces"]) == ("replacement", 1)
    shown = run_cli("advisories", "show", "2").stdout
    assert "held:       replaces advisory 1 'Safety advice" in shown
    status = run_cli("status").stdout
    assert f"HELD: {advisory_dir / 'copied.md'} took an existing advisory's url" in status
    listed = run_cli("advisories", "list", "--held").stdout.splitlines()
    assert len(listed) == 1 and listed[0].endswith("[held: replacement]")
    assert [
        a["id"]
        for a in json.loads(run_cli("advisories", "list", "--json", "--area", "kent").stdout)
    ] == [1]

    released = run_cli("advisories", "release", "2")
    assert released.exit_code == 0 and "Advisory 2 released" in released.stdout
    assert run_cli("advisories", "list", "--held").stdout == "No advisories.\n"
    public = [
        a["id"]
        for a in json.loads(run_cli("advisories", "list", "--json", "--area", "kent").stdout)
    ]
    assert public == [2, 1]


def test_giving_the_copy_its_own_url_makes_it_a_new_advisory_and_drops_the_hold(
    run_cli: Callable[..., Result], advisory_dir: Path
) -> None:
    assert run_cli("ingest").exit_code == 0
    when = f"{NOW - timedelta(hours=2):%H:%M %d/%m/%Y}"
    body = (
        "The A2 through Sittingbourne will be closed overnight for resurfacing works until Friday."
    )
    title = "Road closed in Sittingbourne for resurfacing"
    write_advisory(advisory_dir, "copied", title=title, url=SAMPLE_URL, date=when, body=body)
    assert "replaces advisory 1" in run_cli("ingest").output

    fixed = "https://www.kent.police.uk/news/kent/road-closed-sittingbourne/"
    write_advisory(
        advisory_dir, "copied", title=title, url=fixed, date=when, body=body + " Diversions apply."
    )
    result = run_cli("ingest")

    assert result.exit_code == 0, result.output
    items = json.loads(run_cli("advisories", "list", "--json").stdout)
    assert {(a["url"], a["hold"]) for a in items} == {(fixed, None), (SAMPLE_URL, None)}


def test_a_deleted_file_withdraws_its_advisory_only_after_the_grace_period(
    run_cli: Callable[..., Result], advisory_dir: Path, clock: ManualClock
) -> None:
    when = f"{NOW - timedelta(hours=2):%H:%M %d/%m/%Y}"
    for name in ("a", "b"):
        write_advisory(
            advisory_dir,
            name,
            title=f"Burglaries in Deal ({name})",
            url=f"https://k.example/{name}/",
            date=when,
        )
    assert run_cli("ingest").exit_code == 0
    (advisory_dir / "a.md").unlink()

    run_cli("ingest")
    clock.advance(timedelta(hours=23))
    run_cli("ingest")
    live = {
        a["url"]: a["status"] for a in json.loads(run_cli("advisories", "list", "--json").stdout)
    }
    assert live["https://k.example/a/"] == "active"  # within the grace period
    clock.advance(timedelta(hours=2))
    result = run_cli("ingest")

    assert result.exit_code == 0
    assert "1 advisories withdrawn, their files deleted 24 h ago" in result.output
    live = {
        a["url"]: a["status"] for a in json.loads(run_cli("advisories", "list", "--json").stdout)
    }
    assert (live["https://k.example/a/"], live["https://k.example/b/"]) == ("withdrawn", "active")


def test_a_folder_that_empties_at_once_is_a_failing_source_and_withdraws_nothing(
    run_cli: Callable[..., Result], advisory_dir: Path, clock: ManualClock
) -> None:
    assert run_cli("ingest").exit_code == 0
    hidden = advisory_dir.parent / "unmounted"
    advisory_dir.rename(hidden)
    advisory_dir.mkdir()  # the mount point, empty

    first = run_cli("ingest")
    clock.advance(timedelta(days=3))
    later = run_cli("ingest")

    assert first.exit_code == 1 and "the folder is empty, but held 1 advisory files" in first.output
    assert later.exit_code == 1
    [sample] = json.loads(run_cli("advisories", "list", "--json").stdout)
    assert sample["status"] == "active"
