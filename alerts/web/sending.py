"""What ``alerts web`` sends itself: confirmations always, and, for a while after the
console queued an advisory (sent or released), the alerts too, so a comms officer's
urgent appeal reaches the relay within seconds even when only the web app runs.

The console marks the window *before* it queues, so the wake-up the queueing sends
finds it open. Alongside ``alerts serve`` both processes may then claim the same alerts:
the outbox's claims (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one writer on SQLite)
give each message to one sender only. Digests are always left to ``alerts serve``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from alerts.app import App
from alerts.delivery import OutboxDrainer, outbox_drainer

#: How long after the console queued mail this process sends alerts too: long enough for
#: the relay's retries of a deferred message (``delivery.retry_base``, 60 s, doubling).
ALERTS_WINDOW = 15 * 60.0


class ConsoleSends:
    """When the console last queued alerts, by the app's monotonic clock."""

    def __init__(self, monotonic: Callable[[], float], window: float = ALERTS_WINDOW):
        self.monotonic = monotonic
        self.window = window
        self._until: float | None = None
        self._lock = threading.Lock()
        #: Held while a console change is made and its alerts queued: one at a time
        #: (alerts.web.admin.holds.change_and_queue).
        self.serial = threading.Lock()

    def queued(self) -> None:
        """The console is about to queue alerts: send them from here for a while."""
        with self._lock:
            self._until = self.monotonic() + self.window

    def wanted(self) -> bool:
        with self._lock:
            return self._until is not None and self.monotonic() < self._until


def web_sender(app: App, console: ConsoleSends, stop: threading.Event) -> OutboxDrainer:
    """The sender thread of ``alerts web`` (not started): confirmations, and the
    console's alerts while ``console`` says so."""
    return outbox_drainer(
        app.config.delivery,
        app.config.mail,
        app.store,
        stop,
        clock=app.clock,
        name="web-sender",
        role="web",
        transactional_only=True,
        alerts_too=console.wanted,
    )
