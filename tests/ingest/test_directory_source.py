"""Configured folders are polled: new and changed files are read, unchanged ones cost a stat.

Whether a file was parsed again shows through a file with no date: parsing it warns."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.config import SourceConfig
from alerts.ingest import IngestReport
from alerts.ingest.dates import LONDON
from alerts.ingest.directory import ingest_directories, provisional
from alerts.ingest.settle import Settling
from alerts.store import Store, open_store
from tests.support import NOW
from tests.support.sections import ingest_from

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def write(
    folder: Path,
    name: str,
    title: str,
    *,
    date: str | None = "14:30 18/11/2026",
    settle: bool = True,
) -> Path:
    """An advisory file; ``settle`` dates it an hour back, as a file not being written now."""
    dated = f"publish:\n  date: {date}\n" if date else ""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"```yaml\ntitle: {title}\nurl: https://www.kent.police.uk/news/{path.stem}/\n{dated}```\n\nIn Medway.\n",
        encoding="utf-8",
    )
    if settle:
        os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    return path


def poll(folder: Path, store: Store, gazetteer: Gazetteer) -> IngestReport:
    return ingest_directories([folder], store, gazetteer, now=NOW, zone=LONDON)


def undated_warnings(report: IngestReport) -> list[str]:
    return [w for w in report.warnings if "no publish.date" in w]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "polled"
    write(folder, "a.md", "Appeal one")
    write(folder, "b.md", "Appeal two")
    write(folder, "sub/undated.md", "Appeal three", date=None)
    return folder


def test_the_first_poll_reads_every_file(folder: Path, store: Store, gazetteer: Gazetteer) -> None:
    report = poll(folder, store, gazetteer)
    assert report.counts()["new"] == 3 and report.ok
    assert len(undated_warnings(report)) == 1


def test_unchanged_files_are_not_read_again(
    folder: Path, store: Store, gazetteer: Gazetteer
) -> None:
    poll(folder, store, gazetteer)
    report = poll(folder, store, gazetteer)
    assert report.counts() == {
        "new": 0,
        "updated": 0,
        "unchanged": 3,
        "duplicates": 0,
        "rejected": 0,
        "failed_sources": 0,
        "outside_coverage": 0,
        "no_place": 0,
    }
    assert undated_warnings(report) == []


def test_a_file_whose_stat_is_unchanged_is_trusted_without_reading_it(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    poll(folder, sqlite_store, gazetteer)
    poll(folder, sqlite_store, gazetteer)  # the stat held from one look to the next: trusted
    # Same size, same mtime, different bytes: only a read could notice, and none happens.
    write(folder, "a.md", "Appeal One")
    assert poll(folder, sqlite_store, gazetteer).counts()["updated"] == 0
    # Once the mtime moves, it is read and the change is stored.
    os.utime(folder / "a.md", ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))
    assert poll(folder, sqlite_store, gazetteer).counts()["updated"] == 1


def test_a_touched_file_is_rehashed_but_not_parsed(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    poll(folder, sqlite_store, gazetteer)
    undated = folder / "sub" / "undated.md"
    os.utime(undated, ns=(HOUR_AGO_NS + 5 * 10**9, HOUR_AGO_NS + 5 * 10**9))
    report = poll(folder, sqlite_store, gazetteer)
    assert undated_warnings(report) == [] and report.counts()["unchanged"] == 3
    touched = HOUR_AGO_NS + 5 * 10**9
    assert sqlite_store.sources.seen_files()[str(undated)].mtime_ns == provisional(touched)
    # The new stat held until the next look: remembered as it is, and a stat suffices.
    report = poll(folder, sqlite_store, gazetteer)
    assert undated_warnings(report) == [] and report.counts()["unchanged"] == 3
    assert sqlite_store.sources.seen_files()[str(undated)].mtime_ns == touched


def test_new_files_are_picked_up_and_deleted_ones_forgotten(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    poll(folder, sqlite_store, gazetteer)
    write(folder, "c.md", "Appeal four")
    (folder / "b.md").unlink()
    report = poll(folder, sqlite_store, gazetteer)
    assert report.counts()["new"] == 1 and report.counts()["unchanged"] == 2
    paths = set(sqlite_store.sources.seen_files())
    assert str(folder / "b.md") not in paths and str(folder / "c.md") in paths
    # The advisory itself stays: deleting a file does not withdraw what was published.
    assert sqlite_store.advisories.count() == 4


def test_a_bad_file_is_reported_once_per_change_of_its_contents_until_fixed(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    bad = folder / "bad.md"
    bad.write_text("no front matter here\n", encoding="utf-8")
    os.utime(bad, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    assert [e.path for e in poll(folder, sqlite_store, gazetteer).rejected] == [str(bad)]
    assert poll(folder, sqlite_store, gazetteer).rejected == []  # not at every poll
    os.utime(bad, ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))  # touched, the same bytes
    assert poll(folder, sqlite_store, gazetteer).rejected == []
    bad.write_text("still no front matter\n", encoding="utf-8")
    os.utime(bad, ns=(HOUR_AGO_NS + 2 * 10**9, HOUR_AGO_NS + 2 * 10**9))
    assert [e.path for e in poll(folder, sqlite_store, gazetteer).rejected] == [str(bad)]
    write(folder, "bad.md", "Fixed now")
    report = poll(folder, sqlite_store, gazetteer)
    assert report.ok and report.counts()["new"] == 1


def test_a_new_parser_reads_every_file_once_more(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    poll(folder, sqlite_store, gazetteer)
    seen = sqlite_store.sources.seen_files()
    older = {
        path: dataclasses.replace(file, parser="an older version") for path, file in seen.items()
    }
    sqlite_store.sources.save_seen_files(older, forget=[], now=NOW)
    report = poll(folder, sqlite_store, gazetteer)
    assert len(undated_warnings(report)) == 1 and report.counts()["unchanged"] == 3
    assert undated_warnings(poll(folder, sqlite_store, gazetteer)) == []


def test_a_file_read_for_the_first_time_is_checked_again_next_poll_whatever_its_dates(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    # A second write within the filesystem's mtime tick could keep the same stat: a stat is
    # trusted only once it held from one look to the next (the file's dates say nothing).
    folder = tmp_path / "fresh"
    path = write(folder, "now.md", "Just written", settle=False)
    written = path.stat().st_mtime_ns
    poll(folder, sqlite_store, gazetteer)
    assert [file.mtime_ns for file in sqlite_store.sources.seen_files().values()] == [
        provisional(written)
    ]
    path.write_text(
        path.read_text(encoding="utf-8").replace("Just written", "Just writtem"), encoding="utf-8"
    )
    os.utime(path, ns=(written, written))  # the same tick, the same size: only a read can tell
    report = poll(folder, sqlite_store, gazetteer)
    assert report.counts()["updated"] == 1  # the racy write was seen
    assert [file.mtime_ns for file in sqlite_store.sources.seen_files().values()] == [
        provisional(written)
    ]
    poll(folder, sqlite_store, gazetteer)
    assert [file.mtime_ns for file in sqlite_store.sources.seen_files().values()] == [written]


def test_hidden_files_and_other_suffixes_are_ignored(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    write(folder, ".draft.md", "Draft")
    write(folder, ".git/x.md", "Not an advisory")
    (folder / "notes.txt").write_text("not an advisory", encoding="utf-8")
    assert poll(folder, sqlite_store, gazetteer).counts()["new"] == 3


def test_a_missing_folder_is_a_source_error(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    report = poll(tmp_path / "nowhere", sqlite_store, gazetteer)
    assert [str(e) for e in report.source_errors] == [
        f"{tmp_path / 'nowhere'}: no such file or folder (check 'sources:' in config.yaml)"
    ]


def test_an_unreadable_folder_is_a_source_error_and_its_files_are_not_forgotten(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll(folder, sqlite_store, gazetteer)
    real_scandir = os.scandir

    def denied(path: Any) -> Any:
        if str(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    # Mocked: the tests run as root here, and root reads a folder whatever its mode.
    monkeypatch.setattr(os, "scandir", denied)
    report = poll(folder, sqlite_store, gazetteer)
    assert [str(e) for e in report.source_errors] == [
        f"{folder}: cannot read: Permission denied (make it readable by the user running alerts)"
    ]
    assert len(sqlite_store.sources.seen_files()) == 3


def test_configured_sources_use_the_cache(
    folder: Path, sqlite_url: str, gazetteer: Gazetteer
) -> None:
    sources = [SourceConfig(path=folder)]
    store = open_store(sqlite_url)
    try:
        assert ingest_from(sources, store, gazetteer, now=NOW).counts()["new"] == 3
        again = ingest_from(sources, store, gazetteer, now=NOW)
        assert again.counts()["unchanged"] == 3 and undated_warnings(again) == []
    finally:
        store.close()


def test_alerts_ingest_with_paths_always_reads_them(
    folder: Path, run_cli: Callable[..., object]
) -> None:
    for _ in range(2):
        result = run_cli("ingest", str(folder))
        assert "no publish.date" in result.stderr  # type: ignore[attr-defined]
    result = run_cli("ingest", "--json")
    assert result.exit_code == 0  # type: ignore[attr-defined]


# -- only settled files are read ----------------------------------------------------


def settled_poll(
    folder: Path, store: Store, gazetteer: Gazetteer, settling: Settling
) -> IngestReport:
    return ingest_directories(
        [folder], store, gazetteer, now=NOW, zone=LONDON, settle=0.5, settling=settling
    )


def test_a_file_written_just_now_is_left_until_its_writes_settle(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "watched"
    write(folder, "new.md", "Dangerous dog in Chatham", settle=False)
    clock = ManualClock(NOW, freeze_monotonic=True)
    settling = Settling(clock.monotonic)
    first = settled_poll(folder, sqlite_store, gazetteer, settling)
    assert first.counts()["new"] == 0
    assert first.unsettled == [str(folder / "new.md")]
    assert first.recheck_in is not None and 0 < first.recheck_in <= 0.5
    clock.advance(0.3)  # still within the settle time: not yet
    assert settled_poll(folder, sqlite_store, gazetteer, settling).unsettled == [
        str(folder / "new.md")
    ]
    # Nothing was remembered: the next look reads it once it has been quiet long enough.
    clock.advance(0.3)
    later = settled_poll(folder, sqlite_store, gazetteer, settling)
    assert later.counts()["new"] == 1 and later.unsettled == []


def test_a_file_written_to_between_looks_waits_again_from_its_last_write(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "growing"
    path = write(folder, "grow.md", "Appeal", settle=False)
    clock = ManualClock(NOW, freeze_monotonic=True)
    settling = Settling(clock.monotonic)
    assert settled_poll(folder, sqlite_store, gazetteer, settling).unsettled
    clock.advance(0.4)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("More of the text.\n")  # a slow copy goes on: the size moves
    assert settled_poll(folder, sqlite_store, gazetteer, settling).unsettled
    clock.advance(0.4)  # 0.8 s since the first look, only 0.4 s since the last write
    assert settled_poll(folder, sqlite_store, gazetteer, settling).unsettled
    clock.advance(0.2)
    assert settled_poll(folder, sqlite_store, gazetteer, settling).counts()["new"] == 1


@pytest.mark.parametrize("skew_hours", [-48, 0, 48, 24 * 400])
def test_a_files_own_dates_never_decide_when_it_settled(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer, skew_hours: int
) -> None:
    # A network filesystem whose clock runs ahead or behind (by a day, or a year): only
    # what this process saw of the file over the settle time counts.
    folder = tmp_path / "skewed"
    path = write(folder, "skewed.md", "Appeal", settle=False)
    stamp = time.time_ns() + skew_hours * 3600 * 10**9
    os.utime(path, ns=(stamp, stamp))
    clock = ManualClock(NOW, freeze_monotonic=True)
    settling = Settling(clock.monotonic)
    assert settled_poll(folder, sqlite_store, gazetteer, settling).unsettled
    clock.advance(0.5)
    assert settled_poll(folder, sqlite_store, gazetteer, settling).counts()["new"] == 1


def test_a_file_dated_in_the_future_is_read_once_it_held_still(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    # A network filesystem whose clock runs ahead: the times cannot say it settled, so
    # the same stat seen for the settle time does.
    folder = tmp_path / "skewed"
    path = write(folder, "ahead.md", "Appeal", settle=False)
    ahead = time.time_ns() + 3600 * 10**9
    os.utime(path, ns=(ahead, ahead))
    settling = Settling(time.monotonic)
    report = settled_poll(folder, sqlite_store, gazetteer, settling)
    assert report.unsettled and report.recheck_in is not None
    time.sleep(report.recheck_in)  # the monotonic clock, which time-machine does not move
    assert settled_poll(folder, sqlite_store, gazetteer, settling).counts()["new"] == 1


def test_temporary_and_backup_names_are_never_read_and_a_rename_into_place_is(
    tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "renamed"
    write(folder, "alert.md.tmp", "Being written")
    write(folder, "alert.md~", "Editor backup")
    write(folder, ".alert.md.swp", "Swap file")
    assert poll(folder, sqlite_store, gazetteer).counts()["new"] == 0
    os.rename(folder / "alert.md.tmp", folder / "alert.md")
    assert poll(folder, sqlite_store, gazetteer).counts()["new"] == 1


def test_a_one_off_ingest_waits_for_a_file_still_being_written_and_stores_it_whole(
    tmp_path: Path, sqlite_url: str, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    sources = [SourceConfig(path=folder, settle_seconds=0.3)]
    store = open_store(sqlite_url)
    path = folder / "slow.md"
    head = "```yaml\ntitle: Slow upload\nurl: https://www.kent.police.uk/news/slow/\n"
    tail = "publish:\n  date: 14:30 18/11/2026\n```\n\nResidents of Medway: the whole text.\n"
    finished = threading.Event()

    def writer() -> None:
        with path.open("w", encoding="utf-8") as handle:
            handle.write(head)
            handle.flush()
            time.sleep(0.2)  # a slow copy: the front matter is not even closed yet
            handle.write(tail)
        finished.set()

    thread = threading.Thread(target=writer)
    try:
        thread.start()
        while not path.exists():
            time.sleep(0.01)
        report = ingest_from(sources, store, gazetteer, now=NOW)
        thread.join()
        assert finished.is_set()
        assert report.counts()["new"] == 1 and report.rejected == []
        (advisory,) = store.advisories.find()
        assert "the whole text" in advisory.body_text
    finally:
        thread.join()
        store.close()


def test_a_one_off_ingest_that_waited_counts_each_file_once(
    tmp_path: Path, sqlite_url: str, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "mixed"
    write(folder, "old.md", "Written a moment ago")
    time.sleep(0.35)  # settled by the first look; the two below are not
    write(folder, "bad.md", "No date", date=None, settle=False).write_text(
        "no front matter", encoding="utf-8"
    )
    write(folder, "new.md", "Written just now", settle=False)
    sources = [SourceConfig(path=folder, settle_seconds=0.3)]
    store = open_store(sqlite_url)
    try:
        report = ingest_from(sources, store, gazetteer, now=NOW)
    finally:
        store.close()
    counts = report.counts()
    assert (counts["new"], counts["updated"], counts["unchanged"], counts["rejected"]) == (
        2,
        0,
        0,
        1,
    )
