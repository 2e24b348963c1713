"""What the scheduler's process tests share: ``alerts`` processes stopped after the test,
and a staging folder to write advisory files in before renaming them into place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.processes import AlertsProcess


@pytest.fixture
def processes() -> Iterator[Callable[..., AlertsProcess]]:
    started: list[AlertsProcess] = []

    def start(config: Path, *args: str) -> AlertsProcess:
        process = AlertsProcess(config, *args, cwd=str(REPO))
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """Where files are written before they are renamed into the watched folder."""
    folder = tmp_path / "staging"
    folder.mkdir()
    return folder
