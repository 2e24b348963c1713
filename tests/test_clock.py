"""One clock: nothing in the package reads the system clock but alerts/clock.py, and the
test clock freezes business time while deadlines keep running."""

from __future__ import annotations

import ast
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.app import App
from alerts.clock import SYSTEM, Clock, ManualClock, default_clock, use_clock
from tests.support import NOW

PACKAGE = Path(__file__).resolve().parent.parent / "alerts"
#: Attributes of the time module that read a clock (sleeping is not reading).
TIME_READS = {
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "localtime",
    "gmtime",
    "ctime",
    "asctime",
}
#: Class methods of datetime and date that read the clock.
DATE_READS = {"now", "utcnow", "today"}


def clock_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module reads the system clock: ``time.X()``, ``from time import X``,
    ``datetime.now()`` / ``dt.datetime.now()`` / ``date.today()`` and the like."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [
                (node.lineno, f"from time import {a.name}")
                for a in node.names
                if a.name in TIME_READS
            ]
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        name = (
            base.id
            if isinstance(base, ast.Name)
            else base.attr
            if isinstance(base, ast.Attribute)
            else None
        )
        if name == "time" and node.attr in TIME_READS:
            found.append((node.lineno, f"time.{node.attr}"))
        if name in {"datetime", "date"} and node.attr in DATE_READS:
            found.append((node.lineno, f"{name}.{node.attr}"))
    return found


def test_no_module_but_the_clock_reads_the_system_clock() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "clock.py" and path.parent == PACKAGE:
            continue
        for line, what in clock_reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert offenders == [], "read the time from the injected Clock instead:\n" + "\n".join(
        offenders
    )


def test_the_scan_finds_each_way_of_reading_the_clock() -> None:
    source = (
        "import time, datetime as dt\nfrom datetime import date, datetime\nfrom time import monotonic\n"
        "a = time.time()\nb = dt.datetime.now()\nc = datetime.utcnow()\nd = date.today()\ntime.sleep(1)\n"
    )
    assert [what for _, what in clock_reads(ast.parse(source))] == [
        "from time import monotonic",
        "time.time",
        "datetime.now",
        "datetime.utcnow",
        "date.today",
    ]


def test_business_time_stands_still_until_moved_while_monotonic_time_runs() -> None:
    clock = ManualClock(NOW)
    before = clock.monotonic()
    time.sleep(0.02)
    assert clock.now() == NOW
    assert clock.monotonic() - before >= 0.02  # deadlines never wait on a frozen clock
    assert clock.advance(timedelta(days=400)) == NOW + timedelta(days=400)
    assert clock.monotonic() - before >= 400 * 86400  # and a test can jump over one
    clock.set(NOW)
    assert clock.now() == NOW


def test_a_frozen_monotonic_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(NOW, freeze_monotonic=True)
    before = clock.monotonic()
    time.sleep(0.01)
    assert clock.monotonic() == before
    clock.advance(2.5)
    assert clock.monotonic() == before + 2.5


def test_a_manual_clock_needs_an_aware_time_and_only_advances() -> None:
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="only advances"):
        ManualClock(NOW).advance(-1)


def test_every_test_runs_at_now_and_an_app_reads_the_test_clock(clock: ManualClock) -> None:
    assert default_clock() is clock
    app = App()
    assert app.clock is clock and app.now() == NOW
    clock.advance(timedelta(hours=1))
    assert app.now() == NOW + timedelta(hours=1)


def test_use_clock_restores_the_previous_default() -> None:
    outer = default_clock()
    inner = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    with use_clock(inner):
        assert App().now().year == 2030
    assert default_clock() is outer


def test_the_system_clock_reads_real_time_in_utc() -> None:
    assert isinstance(SYSTEM, Clock)
    assert SYSTEM.now().tzinfo is UTC
    assert abs(SYSTEM.timestamp() - SYSTEM.now().timestamp()) < 5
