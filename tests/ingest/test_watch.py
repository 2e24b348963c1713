"""Watched folders: a change to an advisory file calls back; temporary names do not;
network filesystems and a failing inotify fall back to polling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import watchfiles

from alerts.config import SourceConfig
from alerts.ingest import watch
from alerts.ingest.watch import FolderWatcher, filesystem_type, watch_plans

#: Generous: the callback comes within a second; a loaded machine may take longer.
CALLBACK = 30.0


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def __call__(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_beyond(self, count: int, timeout: float = CALLBACK) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count > count, timeout)


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    folder = tmp_path / "advisories"
    folder.mkdir()
    return folder


def start(sources: list[SourceConfig]) -> tuple[FolderWatcher, Calls]:
    calls = Calls()
    watcher = FolderWatcher(sources, on_change=calls).start()
    # The first call says the watch is in place.
    assert calls.wait_beyond(0)
    return watcher, calls


@pytest.fixture
def stopping() -> Iterator[list[FolderWatcher]]:
    watchers: list[FolderWatcher] = []
    yield watchers
    for watcher in watchers:
        watcher.stop()


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_a_new_advisory_file_calls_back_and_a_temporary_one_does_not(
    watched: Path, mode: str, stopping: list[FolderWatcher]
) -> None:
    watcher, calls = start([SourceConfig(path=watched, watch=mode, poll_seconds=0.2)])  # type: ignore[arg-type]
    stopping.append(watcher)
    assert watcher.modes == {(watched,): "polling" if mode == "poll" else "inotify"}
    before = calls.count
    (watched / "draft.md.tmp").write_text("being written", encoding="utf-8")
    (watched / "notes.md~").write_text("a backup", encoding="utf-8")
    (watched / ".hidden.md").write_text("hidden", encoding="utf-8")
    assert not calls.wait_beyond(before, timeout=1.0)  # the one bounded wait: nothing comes
    (watched / "draft.md.tmp").rename(watched / "alert.md")
    assert calls.wait_beyond(before)


def test_a_watcher_stops_when_asked(watched: Path) -> None:
    watcher, _calls = start([SourceConfig(path=watched)])
    watcher.stop()
    assert not any(thread.is_alive() for thread in watcher.threads)


def test_a_folder_on_a_network_filesystem_is_polled(
    watched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"overlay / overlay rw 0 0\nserver:/export {watched} nfs4 rw,relatime 0 0\n",
        encoding="utf-8",
    )
    assert filesystem_type(watched, str(mounts)) == "nfs4"
    assert filesystem_type(tmp_path, str(mounts)) == "overlay"
    monkeypatch.setattr(watch, "filesystem_type", lambda path: filesystem_type(path, str(mounts)))
    (plan,) = watch_plans([SourceConfig(path=watched)])
    assert plan.polling and plan.automatic
    (forced,) = watch_plans([SourceConfig(path=watched, watch="inotify")])
    assert not forced.polling
    assert watch_plans([SourceConfig(path=watched, watch="no")]) == []


def test_a_mount_point_with_a_space_is_read_from_its_escaped_form(tmp_path: Path) -> None:
    folder = tmp_path / "shared drive"
    folder.mkdir()
    mounts = tmp_path / "mounts"
    escaped = str(folder).replace(" ", "\\040")
    mounts.write_text(f"/ / ext4 rw 0 0\n//nas/alerts {escaped} cifs rw 0 0\n", encoding="utf-8")
    assert filesystem_type(folder / "a.md", str(mounts)) == "cifs"


def test_when_inotify_fails_the_folder_is_polled_instead(
    watched: Path,
    monkeypatch: pytest.MonkeyPatch,
    stopping: list[FolderWatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = watchfiles.watch

    def failing_inotify(*paths: Any, **options: Any) -> Any:
        # What watchfiles raises when the kernel's inotify watch limit is reached; the
        # limit cannot be lowered for one test, so the failure is staged here.
        if not options.get("force_polling"):
            raise OSError("OS file watch limit reached")
        return real(*paths, **options)

    monkeypatch.setattr(watch.watchfiles, "watch", failing_inotify)
    watcher, calls = start([SourceConfig(path=watched, poll_seconds=0.2)])
    stopping.append(watcher)
    assert watcher.modes == {(watched,): "polling"}
    assert "cannot watch" in caplog.text and "polling every 0.2 s instead" in caplog.text
    before = calls.count
    (watched / "alert.md").write_text("new", encoding="utf-8")
    assert calls.wait_beyond(before)
