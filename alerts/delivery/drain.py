"""A sender that never stops: drain the outbox, then sleep until mail is queued (a
wake-up from :mod:`alerts.store.wakeup`) or the next retry falls due.

``alerts serve`` runs one for everything; ``alerts web`` runs one for transactional mail
(confirmations), so a sign-up is answered within seconds even where only the web app
runs. Both may run at once, in any number of processes: the outbox's claims keep every
message to one sender.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from alerts.errors import AlertsError
from alerts.store.wakeup import Channel, Listener
from alerts.types import SendReport

log = logging.getLogger(__name__)

#: Longest sleep without looking at the outbox (a lost wake-up costs at most this).
IDLE_LOOK = 30.0
#: After the relay or the database failed: wait this long before trying again.
TROUBLE_PAUSE = 15.0


class OutboxDrainer:
    """Runs ``send`` (one drain of what is due) whenever there may be mail to send.

    ``send`` is :func:`alerts.delivery.send_pending` bound to the app (and a filter);
    ``report`` is called with each drain that did something; ``clock`` is the time.
    """

    def __init__(
        self,
        *,
        send: Callable[[threading.Event], SendReport],
        channel: Channel,
        next_due: Callable[[], datetime | None],
        clock: Callable[[], datetime],
        stop: threading.Event,
        report: Callable[[SendReport, datetime], None] | None = None,
        name: str = "sender",
        idle: float = IDLE_LOOK,
        presence: Callable[[], AbstractContextManager[object]] | None = None,
    ):
        self.send = send
        self.channel = channel
        self.next_due = next_due
        self.clock = clock
        self.stop = stop
        self.report = report
        self.name = name
        self.idle = idle
        #: Says, for as long as the sender runs, that it does (``store.senders.running``).
        self.presence = presence
        self.thread: threading.Thread | None = None
        #: Set once the listener is subscribed (a wake-up from then on is not missed)
        #: and the sender is listed as running (``presence``).
        self.listening = threading.Event()

    def start(self) -> OutboxDrainer:
        self.thread = threading.Thread(target=self.run, name=f"alerts-{self.name}", daemon=True)
        self.thread.start()
        self.listening.wait(30)
        return self

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        listener = self._listen()
        try:
            with self._present():
                # Once it is listed as running too: alerts status lists it from now on.
                self.listening.set()
                while not self.stop.is_set():
                    pause = self._drain()
                    if self.stop.is_set():
                        break
                    self._sleep(listener, pause)
        finally:
            if listener is not None:
                listener.close()

    @contextlib.contextmanager
    def _present(self) -> Iterator[None]:
        """Say that this sender runs while it does; a sender that cannot say so (the
        database is down as it starts) sends all the same."""
        with contextlib.ExitStack() as stack:
            if self.presence is not None:
                try:
                    stack.enter_context(self.presence())
                except SQLAlchemyError as exc:
                    log.warning(
                        "%s: cannot say that it runs (%s); alerts status and /metrics will"
                        " not list it",
                        self.name,
                        str(exc).splitlines()[0],
                    )
            yield

    def _listen(self) -> Listener | None:
        try:
            return self.channel.listen()
        except Exception as exc:  # senders still look on a timer
            log.warning(
                "%s: cannot listen for wake-ups (%s); looking at the outbox every %g s instead",
                self.name,
                exc,
                self.idle,
            )
            return None

    def _drain(self) -> float:
        """Send what is due; the seconds to sleep before looking again."""
        started = self.clock()
        try:
            result = self.send(self.stop)
        except AlertsError as exc:
            # The relay refused our settings (credentials, certificate): the mail stays
            # queued; say so each time until it is fixed.
            log.error(
                "%s: %s; the mail stays queued and is tried again in %g s",
                self.name,
                exc,
                TROUBLE_PAUSE,
            )
            return TROUBLE_PAUSE
        except OperationalError as exc:
            log.error(
                "%s: the database is unavailable (%s); trying again in %g s",
                self.name,
                str(exc.orig or exc).splitlines()[0],
                TROUBLE_PAUSE,
            )
            return TROUBLE_PAUSE
        except Exception:
            log.exception("%s failed unexpectedly; trying again in %g s", self.name, TROUBLE_PAUSE)
            return TROUBLE_PAUSE
        busy = bool(result.sent or result.deferred or result.bounced or result.failed)
        if (busy or result.errors) and self.report is not None:
            self.report(result, started)
        if result.paused_until is not None:
            # The relay asked every sender to wait: look again when the pause ends.
            until = datetime.fromisoformat(result.paused_until)
            return min(max((until - self.clock()).total_seconds(), 1.0), self.idle)
        if result.errors:
            return TROUBLE_PAUSE  # the relay is out of reach: the rows wait for their retry
        try:
            due = self.next_due()
        except OperationalError:
            return TROUBLE_PAUSE
        if due is None:
            return self.idle
        # Due already yet nothing was sent: another sender holds it; do not spin.
        floor = 0.0 if busy else 1.0
        return min(max((due - self.clock()).total_seconds(), floor), self.idle)

    def _sleep(self, listener: Listener | None, seconds: float) -> None:
        # In slices, so a stop is noticed within a quarter second even with no wake-up.
        remaining = seconds
        while remaining > 0 and not self.stop.is_set():
            step = min(remaining, 0.25)
            if listener is not None:
                if listener.wait(step):
                    return
            else:
                self.stop.wait(step)
            remaining -= step
