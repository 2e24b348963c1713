"""``alerts subscribers ...`` end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result

from alerts.store import open_store
from alerts.subscribers.lists import read_list
from alerts.types import SubscriberStatus
from tests.support import REPO, make_database

Run = Callable[..., Result]


@pytest.fixture
def run(write_config: Callable[..., Path], db_url: str, run_cli: Run) -> Run:
    """The CLI against a config whose database is SQLite or PostgreSQL in turn, made
    as a first run makes it (list, remove and export never make one)."""
    config = write_config(database=db_url)
    make_database(config)

    def invoke(*args: str) -> Result:
        return run_cli(*args, config=config)

    invoke.db_url = db_url  # type: ignore[attr-defined]
    return invoke


def status_of(run: Run, email: str) -> SubscriberStatus | None:
    store = open_store(run.db_url)  # type: ignore[attr-defined]
    try:
        found = store.subscribers.find(email)
        return found.status if found else None
    finally:
        store.close()


def test_add_then_list_as_json_with_offsets_and_slugs(run: Run) -> None:
    result = run(
        "subscribers",
        "add",
        "Jo@Example.ORG",
        "--area",
        "ME4",
        "--area",
        "Chatham",
        "--frequency",
        "weekly",
        "--name",
        "Jo",
        "--forwardable",
        "--no-urgent",
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Added: Jo@example.org (active, weekly, ")
    listed = json.loads(run("subscribers", "list", "--json").output)
    assert len(listed) == 1
    entry = listed[0]
    assert entry["email"] == "Jo@example.org" and entry["name"] == "Jo"
    assert entry["areas"] == ["chatham"]  # ME4 stands for Chatham
    assert entry["frequency"] == "weekly" and entry["status"] == "active"
    assert entry["forwardable"] is True and entry["urgent"] is False
    for key in ("created_at", "confirmed_at", "watermark"):
        assert datetime.fromisoformat(entry[key]).utcoffset() is not None


def test_add_again_updates_and_reports_it(run: Run) -> None:
    run("subscribers", "add", "a@example.org", "--area", "medway")
    result = run("subscribers", "add", "a@example.org", "--area", "dover", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["outcome"] == "updated"
    assert json.loads(result.output)["areas"] == ["dover"]


def test_add_pending_queues_a_confirmation(run: Run) -> None:
    result = run("subscribers", "add", "p@example.org", "--area", "kent", "--pending")
    assert result.exit_code == 0
    assert "(pending, daily, Kent) (a confirmation email is queued)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address", "--area", "kent"], "is not a valid email address"),
        (["a@example.org", "--area", "Narnia"], "unknown area 'Narnia'"),
        (["a@example.org"], "Missing option '--area'"),
        (["a@example.org", "--area", "kent", "--frequency", "hourly"], "'hourly' is not one of"),
    ],
)
def test_bad_input_to_add_is_one_line_and_exit_status_2(
    run: Run, args: list[str], message: str
) -> None:
    result = run("subscribers", "add", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_remove_keeps_the_address_as_unsubscribed_and_add_only_asks_its_owner_to_come_back(
    run: Run,
) -> None:
    run("subscribers", "add", "gone@example.org", "--area", "kent")
    result = run("subscribers", "remove", "gone@EXAMPLE.org")
    assert result.exit_code == 0 and result.output == "Unsubscribed gone@example.org.\n"
    assert status_of(run, "gone@example.org") is SubscriberStatus.UNSUBSCRIBED
    again = run("subscribers", "remove", "gone@example.org")
    assert again.exit_code == 0 and "already unsubscribed" in again.output
    result = run("subscribers", "add", "gone@example.org", "--area", "kent")
    assert result.exit_code == 0
    assert result.stdout == (
        "Asked gone@example.org to confirm: it unsubscribed, so only its owner can subscribe again;"
        " a confirmation email is queued for Kent.\n"
    )
    assert (
        status_of(run, "gone@example.org") is SubscriberStatus.UNSUBSCRIBED
    )  # until its owner confirms


def test_remove_of_an_unknown_address_says_so(run: Run) -> None:
    result = run("subscribers", "remove", "nobody@example.org")
    assert result.exit_code == 2 and "no subscriber 'nobody@example.org'" in result.output
    run("subscribers", "add", "Jo.Bloggs@example.org", "--area", "kent")
    result = run("subscribers", "remove", "jo.bloggs@example.org")
    assert result.exit_code == 2
    assert "(did you mean Jo.Bloggs@example.org?)" in result.output


def test_list_filters_by_area_with_the_matching_rule_and_by_status(run: Run) -> None:
    run("subscribers", "import", str(REPO / "subscribers" / "example.yaml"))
    medway = json.loads(run("subscribers", "list", "--json", "--area", "ME4").output)
    # Medway news reaches Medway's own subscribers and those of places within it.
    assert {e["email"] for e in medway} == {
        "resident.chatham@example.org",
        "coordinator.medway@example.org",
    }
    gone = json.loads(run("subscribers", "list", "--json", "--status", "unsubscribed").output)
    assert [e["email"] for e in gone] == ["moved.away@example.org"]
    text = run("subscribers", "list").output
    assert (
        "coordinator.medway@example.org" in text
        and "[forwardable]" in text
        and "[no urgent]" in text
    )
    assert (
        run("subscribers", "list", "--area", "dover", "--status", "active").output
        == "No subscribers match.\n"
    )


def test_list_with_nobody(run: Run) -> None:
    assert run("subscribers", "list").output == "No subscribers.\n"
    assert json.loads(run("subscribers", "list", "--json").output) == []


def test_import_is_idempotent_and_reports_counts(run: Run) -> None:
    example = str(REPO / "subscribers" / "example.csv")
    first = run("subscribers", "import", example)
    assert first.exit_code == 0
    assert first.stdout.startswith("3 added, 0 updated, 0 unchanged")
    second = run("subscribers", "import", example, "--json")
    assert json.loads(second.output)["unchanged"] == 3


def test_import_with_bad_rows_names_them_and_exits_1(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "email,areas\ngood@example.org,kent\nbad,kent\nworse@example.org,Narnia\n", encoding="utf-8"
    )
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 1
    assert f"Bad row: {path}:3: bad: " in result.output
    assert f"Bad row: {path}:4: worse@example.org: unknown area 'Narnia'" in result.output
    assert "1 added" in result.output


def test_import_skips_opted_out_addresses_and_says_why(run: Run, tmp_path: Path) -> None:
    run("subscribers", "add", "gone@example.org", "--area", "kent")
    run("subscribers", "remove", "gone@example.org")
    path = tmp_path / "list.yaml"
    path.write_text(
        "subscribers:\n  - email: gone@example.org\n    areas: [kent]\n", encoding="utf-8"
    )
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 0
    assert (
        f"Skipped: {path}:2: gone@example.org: unsubscribed: not re-added (PECR)" in result.output
    )
    assert status_of(run, "gone@example.org") is SubscriberStatus.UNSUBSCRIBED


def test_import_pending_makes_new_addresses_confirm(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,areas\nnew@example.org,kent\n", encoding="utf-8")
    assert run("subscribers", "import", str(path), "--pending").exit_code == 0
    assert status_of(run, "new@example.org") is SubscriberStatus.PENDING


def test_an_unreadable_list_exits_2_with_the_file_and_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("subscribers:\n  - email: [oops\n", encoding="utf-8")
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {path}:") and "invalid YAML" in result.output


@pytest.mark.parametrize("fmt", ["csv", "yaml"])
def test_export_writes_what_import_reads(run: Run, tmp_path: Path, fmt: str) -> None:
    run("subscribers", "import", str(REPO / "subscribers" / "example.yaml"))
    printed = run("subscribers", "export", "--format", fmt)
    assert printed.exit_code == 0
    out = tmp_path / f"export.{fmt}"
    written = run("subscribers", "export", "--format", fmt, "--out", str(out))
    assert written.exit_code == 0 and "Wrote 4 subscribers" in written.output
    assert out.read_text(encoding="utf-8") == printed.output
    rows = [row.values for row in read_list(out)]
    assert {row["email"] for row in rows} >= {
        "moved.away@example.org",
        "resident.chatham@example.org",
    }
    active_only = run("subscribers", "export", "--format", fmt, "--status", "active").output
    assert "moved.away@example.org" not in active_only


def test_add_refuses_an_address_with_non_ascii_before_the_at_in_one_line_and_stores_nothing(
    run: Run,
) -> None:
    result = run("subscribers", "add", "josé@example.org", "--area", "kent", "--pending")

    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line == (
        "Error: 'josé@example.org' has characters outside ASCII before the @, and alerts can only be sent to"
        " addresses written in ASCII letters, digits and punctuation (use another address for this subscriber)"
    )
    assert json.loads(run("subscribers", "list", "--json").output) == []


def test_add_stores_an_internationalised_domain_in_its_ascii_form_so_any_relay_takes_it(
    run: Run,
) -> None:
    result = run("subscribers", "add", "ann@bücher.example", "--area", "kent")

    assert result.exit_code == 0, result.output
    [entry] = json.loads(run("subscribers", "list", "--json").output)
    assert entry["email"] == "ann@xn--bcher-kva.example"
    assert status_of(run, "ann@BÜCHER.example") is SubscriberStatus.ACTIVE  # found in either form


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "list.csv",
            "email,areas\ngood@example.org,kent\njosé@example.org,kent\nann@bücher.example,kent\n",
            3,
        ),
        (
            "list.yaml",
            "subscribers:\n  - email: good@example.org\n    areas: [kent]\n  - email: josé@example.org\n"
            "    areas: [kent]\n  - email: ann@bücher.example\n    areas: [kent]\n",
            4,
        ),
    ],
)
def test_import_names_a_non_ascii_address_by_line_and_imports_the_rest(
    run: Run, tmp_path: Path, name: str, text: str, line: int
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    result = run("subscribers", "import", str(path))

    assert result.exit_code == 1
    assert (
        f"Bad row: {path}:{line}: josé@example.org: 'josé@example.org' has characters outside ASCII"
        in result.output
    )
    assert "2 added" in result.output
    listed = {e["email"] for e in json.loads(run("subscribers", "list", "--json").output)}
    assert listed == {"good@example.org", "ann@xn--bcher-kva.example"}
