"""The one clock: every stage that needs the time takes a :class:`Clock`.

``now()`` is business time: the dates stamped on advisories, when a link was issued, the
windows of limits and retention, schedules and latency stamps. ``monotonic()`` serves
deadlines and timeouts, which must not jump when the wall clock is set. Nothing outside
this module reads the system clock (``tests/test_clock.py`` enforces it), so a test can
freeze business time for a whole test and move it explicitly, while deadlines keep running.

:class:`App` makes the clock once per process; it is :func:`default_clock` unless the
caller passes one. Tests install a :class:`ManualClock` as the default (``use_clock``), so
commands run in-process (click's runner) see the same frozen time as the test.

Libraries that read their own clock: APScheduler 3 computes next run times from
``datetime.now(tz)`` (``alerts/scheduler.py`` gives each job its first run time from our
clock, so the two agree at start); itsdangerous is given our clock through
:class:`alerts.tokens.LinkSigner`; SQLite and PostgreSQL defaults never stamp a row (every
time column is written from ``now()``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


class Clock:
    """The system clock: real time, in UTC, and a monotonic counter in seconds."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def timestamp(self) -> float:
        """``now()`` as POSIX seconds (for formats that want a number: DKIM ``t=``)."""
        return self.now().timestamp()


class ManualClock(Clock):
    """Business time that stands still until moved: ``set`` it or ``advance`` it.

    ``monotonic()`` keeps running with real time (so no deadline waits on a frozen clock),
    plus whatever ``advance`` added: a test about a deadline can jump over it. With
    ``freeze_monotonic=True`` it too moves only when advanced.
    """

    def __init__(self, start: datetime, *, freeze_monotonic: bool = False):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime (for example with tzinfo=UTC)")
        self._now = start.astimezone(UTC)
        self._frozen = freeze_monotonic
        self._base = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._base if self._frozen else time.monotonic()) + self._offset

    def set(self, moment: datetime) -> None:
        """Move business time to ``moment`` (forwards or back); monotonic time is untouched."""
        if moment.tzinfo is None:
            raise ValueError("set() needs an aware datetime")
        with self._lock:
            self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move both clocks forward by ``delta`` (seconds or a timedelta); returns ``now()``."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock only advances; use set() to go back in business time")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._offset += seconds
            return self._now


SYSTEM = Clock()
_default: Clock = SYSTEM


def default_clock() -> Clock:
    """The clock an :class:`~alerts.app.App` uses when given none: the system's, unless a
    test installed another with :func:`use_clock`."""
    return _default


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the default for the block (tests: in-process commands see it)."""
    global _default
    previous, _default = _default, clock
    try:
        yield clock
    finally:
        _default = previous
