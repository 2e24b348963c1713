"""The forms' work, done off the connection that asked for it.

Subscribe and "email me a link to manage my subscription" answer the same page at once
whatever the address; what the address's state calls for (a confirmation, a notice, a
manage link, or nothing) is done afterwards. Done as a background task of the response,
it would run on the same connection, and on an HTTP/1.1 kept-alive connection the next
request would wait for it: its timing would tell whether the address was known. So the
work goes to :class:`FormWork`, a bounded queue drained by one worker thread that the
app's lifespan starts, and that drains what is queued when the server stops.

The queue is bounded (:data:`CAPACITY`), so a flood of posts cannot grow memory. When it
is full the form answers 503 "busy, nothing was done, try again in a minute" (the
caller's :func:`alerts.web.subscriptions.after_answer`): the resident is told, the
operator's log says so, and no sign-up is dropped without its owner knowing.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Jobs waiting at most: each is one form post, a few hundred bytes; the worker does a
#: sign-up in milliseconds, so a full queue means a flood, not residents.
CAPACITY = 1000
#: How long the worker may take to finish what is queued when the server stops.
DRAIN_SECONDS = 30.0

Job = Callable[[], None]


class FormWork:
    """A bounded queue of jobs and the one thread that runs them in order."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the worker runs (the server ran the app's lifespan)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the worker (idempotent)."""
        with self._lock:
            if self.running:
                return
            self._thread = threading.Thread(target=self._run, name="form-work", daemon=True)
            self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False, with nothing queued, when the queue is full."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            log.warning(
                "The forms' work queue is full (%d jobs): a form post was answered 503",
                self._jobs.maxsize,
            )
            return False
        return True

    def waiting(self) -> int:
        """Jobs queued and not yet started."""
        return self._jobs.qsize()

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        """Finish what is queued, then stop the worker (waits up to ``timeout`` seconds;
        what is left then is logged, as the process is going away)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._jobs.put(None, timeout=timeout)  # after every job already queued
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "Stopped with %d form jobs not done (sign-ups or manage-link requests)",
                self._jobs.qsize(),
            )

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # a job logs its own failures; this keeps the worker alive
                log.exception("a form job failed")
            finally:
                self._jobs.task_done()
