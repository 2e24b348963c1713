"""What a polled folder never reads: a symlink leading outside it (unless the source
lists the target), and FIFOs, sockets and devices. Each is reported once, not at every
poll, and again only when it changes."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.config import load_config
from alerts.ingest import IngestReport
from alerts.ingest.dates import LONDON
from alerts.ingest.directory import ingest_directories
from alerts.store import Store
from tests.support import NOW
from tests.support.sections import ingest_from

SETTLED_NS = int(NOW.timestamp()) * 10**9


def advisory(path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"```yaml\ntitle: {title}\nurl: https://www.kent.police.uk/news/{path.stem}/\n"
        "publish:\n  date: 14:30 18/11/2026\n```\n\nIn Medway.\n",
        encoding="utf-8",
    )
    os.utime(path, ns=(SETTLED_NS, SETTLED_NS))  # settled: not being written now
    return path


def poll(
    folder: Path, store: Store, gazetteer: Gazetteer, targets: Sequence[Path] = ()
) -> IngestReport:
    return ingest_directories(
        [folder], store, gazetteer, now=NOW, zone=LONDON, symlink_targets={folder: tuple(targets)}
    )


def skipped(report: IngestReport) -> list[str]:
    return [warning for warning in report.warnings if "; skipped (" in warning]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "polled"
    advisory(folder / "a.md", "Appeal in Chatham")
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return advisory(tmp_path / "elsewhere" / "secret.md", "Not for publication")


def test_a_symlink_out_of_the_folder_is_skipped_and_reported_once(
    folder: Path, outside: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    link = folder / "linked.md"
    link.symlink_to(outside)

    first = poll(folder, sqlite_store, gazetteer)
    assert first.counts()["new"] == 1
    assert skipped(first) == [
        f"{link}: a symlink to {outside}, outside the source folder; skipped"
        " (list the target's folder in 'symlink_targets' of this source to read it)"
    ]
    assert [a.title for a in sqlite_store.advisories.find()] == ["Appeal in Chatham"]
    for _ in range(3):
        assert skipped(poll(folder, sqlite_store, gazetteer)) == []

    # Pointed somewhere else: that is news, reported again.
    other = advisory(outside.parent / "other.md", "Also not")
    link.unlink()
    link.symlink_to(other)
    assert [w.split(",")[0] for w in skipped(poll(folder, sqlite_store, gazetteer))] == [
        f"{link}: a symlink to {other}"
    ]


def test_a_symlinked_folder_out_of_the_folder_is_skipped_too(
    folder: Path, outside: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    (folder / "more").symlink_to(outside.parent, target_is_directory=True)
    report = poll(folder, sqlite_store, gazetteer)
    assert report.counts()["new"] == 1
    assert [w.split(";")[0] for w in skipped(report)] == [
        f"{folder / 'more'}: a symlink to {outside.parent}, outside the source folder"
    ]


def test_a_symlink_into_a_listed_target_is_read(
    folder: Path, outside: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    (folder / "linked.md").symlink_to(outside)
    (folder / "shared").symlink_to(outside.parent, target_is_directory=True)
    (outside.parent / "loop").symlink_to(
        outside.parent, target_is_directory=True
    )  # a loop is walked once
    report = poll(folder, sqlite_store, gazetteer, targets=[outside.parent])
    assert skipped(report) == [] and not report.rejected
    assert sorted(a.title for a in sqlite_store.advisories.find()) == [
        "Appeal in Chatham",
        "Not for publication",
    ]


def test_a_symlink_within_the_folder_is_read(
    folder: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    advisory(folder / "archive" / "b.md", "Appeal in Rochester")
    (folder / "latest.md").symlink_to(folder / "archive" / "b.md")
    (folder / "again").symlink_to(
        folder / "archive", target_is_directory=True
    )  # read already: not twice
    report = poll(folder, sqlite_store, gazetteer)
    assert skipped(report) == [] and not report.rejected
    assert sorted(a.title for a in sqlite_store.advisories.find()) == [
        "Appeal in Chatham",
        "Appeal in Rochester",
    ]


@pytest.fixture
def unix_socket(folder: Path) -> Iterator[Path]:
    path = folder / "listening.md"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield path
    server.close()


def test_fifos_sockets_and_devices_are_never_opened_and_reported_once(
    folder: Path, unix_socket: Path, sqlite_store: Store, gazetteer: Gazetteer
) -> None:
    fifo = folder / "pipe.md"
    os.mkfifo(fifo)  # opening it for reading would block the poll for ever
    device = folder / "null.md"
    device.symlink_to("/dev/null")  # outside the folder as well; a device either way

    first = poll(folder, sqlite_store, gazetteer)
    assert first.counts()["new"] == 1 and not first.rejected
    assert sorted(skipped(first)) == sorted(
        [
            f"{fifo}: a FIFO (named pipe), not a file; skipped (an advisory is a plain file: move this out of the folder)",
            f"{unix_socket}: a socket, not a file; skipped (an advisory is a plain file: move this out of the folder)",
            f"{device}: a symlink to /dev/null, outside the source folder; skipped"
            " (list the target's folder in 'symlink_targets' of this source to read it)",
        ]
    )
    assert skipped(poll(folder, sqlite_store, gazetteer)) == []

    fifo.unlink()  # gone, then back: reported again
    assert skipped(poll(folder, sqlite_store, gazetteer)) == []
    os.mkfifo(fifo)
    assert [w.split(":")[0] for w in skipped(poll(folder, sqlite_store, gazetteer))] == [str(fifo)]


def test_symlink_targets_in_config_are_relative_to_it(
    tmp_path: Path,
    folder: Path,
    outside: Path,
    sqlite_store: Store,
    gazetteer: Gazetteer,
    write_config: Callable[..., Path],
) -> None:
    (folder / "linked.md").symlink_to(outside)
    config = load_config(
        write_config(
            sources=[
                {
                    "path": str(folder),
                    "symlink_targets": [os.path.relpath(outside.parent, tmp_path)],
                }
            ]
        )
    )
    assert config.sources[0].symlink_targets == (outside.parent,)
    report = ingest_from(config.sources, sqlite_store, gazetteer, now=NOW)
    assert report.counts()["new"] == 2 and skipped(report) == []
