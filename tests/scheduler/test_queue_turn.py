"""The queue turn (alerts.locking.queue_turn): 'alerts serve' and the console of 'alerts
web' both stamp changes and queue alerts, and a queueing moves every watermark to its
instant. Without taking turns, a change stamped before another's queueing instant but
committed after its read is never mailed. Each race is played out step by step with
events, on SQLite and PostgreSQL, and the missed alert is queued."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import alerts.pipeline
from alerts.app import App
from alerts.clock import ManualClock
from alerts.locking import QueueTurnBusy, queue_turn
from alerts.pipeline import Plan, run_cycle
from alerts.store.advisories import Advisories
from alerts.types import Priority, RunReport
from alerts.web.admin.holds import change_and_queue
from alerts.web.sending import ConsoleSends
from tests.support import NOW
from tests.support.advisory_files import write_advisory
from tests.support.digests import advisory, save
from tests.support.feed_server import serve_feeds
from tests.support.processes import AlertsProcess
from tests.support.seeding import seed_subscribers
from tests.support.tables import outbox_rows

EARLIER = NOW - timedelta(hours=1)
#: How long one side waits for a step of the other that, once they take turns, never
#: comes while it holds the turn (the step then comes after).
STEP = 1.0
#: 'alerts serve' queueing the immediate alerts only.
QUEUE_ONLY = Plan("poll", ingest=False, review=False, feeds="never", digests=(), send=False)
INGEST_AND_QUEUE = Plan("poll", review=False, feeds="never", digests=(), send=False)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    folder.mkdir()
    return folder


@pytest.fixture
def apps(write_config: Callable[..., Path], db_url: str, source: Path) -> Iterator[tuple[App, App]]:
    """'alerts serve' and 'alerts web': two Apps (stores, engines) on one database."""
    config = write_config(database=db_url, sources=[{"path": str(source), "settle_seconds": 0}])
    serve, web = App(config), App(config)
    seed_subscribers(
        serve.store, count=1, now=EARLIER, areas=("medway",), frequencies=("immediate",)
    )
    yield serve, web
    serve.close()
    web.close()


def in_thread(
    name: str, target: Callable[[], object]
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test, which fails with it
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, errors


def urgent_queued(app: App) -> list[dict[str, Any]]:
    return [
        row for row in outbox_rows(app.store.engine) if "Dangerous dog" in row["digest_subject"]
    ]


def test_a_console_change_committed_after_serves_read_is_still_queued(
    apps: tuple[App, App], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Race (1): the console takes its instant, serve's queueing (a later instant) reads
    before the console's change is committed and moves the watermarks past it."""
    serve, web = apps
    stamped, serve_read, committed, serve_done = (threading.Event() for _ in range(4))
    read = Advisories.candidates

    def candidates(self: Advisories, *args: Any, **kwargs: Any) -> Any:
        found = read(self, *args, **kwargs)
        if threading.current_thread().name != "console":
            # Serve has read; its watermarks move once the console's change is in.
            serve_read.set()
            committed.wait(STEP)
        return found

    # Not a stand-in: the real read, with a pause to interleave the two sides.
    monkeypatch.setattr(Advisories, "candidates", candidates)

    def compose_send(now: datetime) -> tuple[int, bool]:
        stamped.set()
        serve_read.wait(STEP)  # before the fix: serve reads now, before the commit
        advisory_id = save(
            web, advisory("dog", title="Dangerous dog", priority=Priority.URGENT), at=now
        )
        committed.set()
        serve_done.wait(STEP)  # before the fix: serve moves the watermarks, then we queue
        return advisory_id, True

    console = ConsoleSends(web.clock.monotonic)
    thread, errors = in_thread("console", lambda: change_and_queue(web, console, compose_send))
    assert stamped.wait(10)
    clock.advance(timedelta(minutes=1))  # serve's queueing instant is later than the console's
    run_cycle(serve, QUEUE_ONLY)
    serve_done.set()
    thread.join(30)
    assert not errors
    assert len(urgent_queued(web)) == 1


def test_serves_ingest_committed_after_a_console_queueing_is_still_queued(
    apps: tuple[App, App],
    source: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Race (2): serve's ingest stamps its cycle's instant and commits late; meanwhile
    the console queues at a later instant and moves the watermarks past serve's."""
    serve, web = apps
    run_cycle(serve, INGEST_AND_QUEUE)  # the source's first read: its baseline (empty)
    clock.advance(timedelta(minutes=1))
    when = (NOW - timedelta(hours=2)).strftime("%H:%M %d/%m/%Y")
    write_advisory(
        source,
        "dog",
        title="Dangerous dog in Medway",
        url="https://www.kent.police.uk/news/dog/",
        date=when,
        body="Residents of **Medway**: keep children and pets indoors.",
    )
    reading, console_queued = threading.Event(), threading.Event()
    ingest = alerts.pipeline.ingest_sources

    def slow_ingest(*args: Any, **kwargs: Any) -> Any:
        reading.set()
        console_queued.wait(STEP)  # before the fix: the console queues meanwhile
        return ingest(*args, **kwargs)

    # The real ingest, late: as a slow feed or a large folder makes it.
    monkeypatch.setattr(alerts.pipeline, "ingest_sources", slow_ingest)
    thread, errors = in_thread("serve", lambda: run_cycle(serve, INGEST_AND_QUEUE))
    assert reading.wait(10)
    clock.advance(timedelta(minutes=1))
    console = ConsoleSends(web.clock.monotonic)
    change_and_queue(web, console, lambda now: (None, True))  # e.g. another release
    console_queued.set()
    thread.join(30)
    assert not errors
    assert len(urgent_queued(web)) == 1


HOLD = """
import sys, time
from alerts.locking import queue_turn
with queue_turn(sys.argv[1]).hold("test holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_turn_held_by_another_process_is_waited_for_then_refused_naming_it(
    db_url: str, apps: tuple[App, App]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, db_url, "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(QueueTurnBusy) as refused, queue_turn(db_url, wait=0.3).hold("x"):
            pass
        assert f"alerts test holder, pid {holder.pid} on " in str(refused.value)
        with queue_turn(db_url, wait=30).hold("patient"):
            pass  # once it had let go
    finally:
        assert holder.wait(30) == 0


def test_a_console_send_is_not_kept_waiting_behind_a_stalled_upstream_feed(
    write_config: Callable[..., Path], db_url: str, clock: ManualClock
) -> None:
    """'alerts serve' polls an upstream feed that has taken the request and holds its
    answer. The comms officer's urgent send from the console takes the queue turn and
    is queued while the fetch is still stalled; the cycle then stores the feed."""
    with serve_feeds() as upstream:
        config = write_config(
            database=db_url,
            sources=[{"feed": upstream.url("/stall"), "area": "kent", "timeout": 90}],
        )
        serve, web = App(config), App(config)
        try:
            seed_subscribers(
                serve.store, count=1, now=EARLIER, areas=("medway",), frequencies=("immediate",)
            )
            reports: list[RunReport] = []
            cycle, cycle_errors = in_thread(
                "serve", lambda: reports.append(run_cycle(serve, INGEST_AND_QUEUE))
            )
            assert upstream.stalled.wait(30), "the cycle never fetched the feed"
            upstream_stalled_at_send: list[bool] = []

            def compose_send(now: datetime) -> tuple[int, bool]:
                # Inside the console's turn: is the upstream still holding its answer?
                upstream_stalled_at_send.append(not upstream.unstall.is_set())
                urgent = advisory("dog", title="Dangerous dog", priority=Priority.URGENT)
                return save(web, urgent, at=now), True

            console = ConsoleSends(web.clock.monotonic)
            send, send_errors = in_thread(
                "console", lambda: change_and_queue(web, console, compose_send)
            )
            # Generous: the send needs only the turn. Before the fix it waits for the
            # feed, which answers only once this wait is over.
            send.join(60)
            upstream.unstall.set()
            send.join(60)
            cycle.join(60)
            assert not send_errors and not cycle_errors
            assert upstream_stalled_at_send == [True]
            assert len(urgent_queued(web)) == 1
            # The guarantee kept: the feed's entries are stored (its first poll, the
            # baseline) and the cycle failed nothing.
            (report,) = reports
            assert not report.failed_stages, report.problems
            assert report.new == 3
        finally:
            serve.close()
            web.close()


@pytest.mark.parametrize("command", [("ingest",), ("run", "--once")])
def test_a_command_waits_for_a_file_being_written_before_it_takes_the_turn(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Any],
    db_url: str,
    source: Path,
    command: tuple[str, ...],
) -> None:
    """'alerts ingest' and 'alerts run --once' wait (at most 10 s) for a file still being
    written before they take the queue turn, not inside it: the comms officer's urgent
    send, which holds the turn, is never kept waiting by a settling file. Here the
    command starts, and settles its file, while the console holds the turn."""
    config = write_config(database=db_url, sources=[{"path": str(source), "settle_seconds": 1}])
    web = App(config)
    try:
        seed_subscribers(
            web.store, count=1, now=EARLIER, areas=("medway",), frequencies=("immediate",)
        )
        write_advisory(
            source,
            "dog",
            title="Dangerous dog in Medway",
            url="https://www.kent.police.uk/news/dog/",
            date=(NOW - timedelta(hours=2)).strftime("%H:%M %d/%m/%Y"),
            body="Residents of **Medway**: keep children and pets indoors.",
        )
        started: list[AlertsProcess] = []

        def compose_send(now: datetime) -> tuple[int, bool]:
            # Inside the console's turn: the command, just started, finds the file
            # still settling and waits for it without the turn (before the fix it
            # waited for the turn first, and only then for the file).
            process = AlertsProcess(config, "-v", *command)
            started.append(process)
            process.wait_for("still being written", timeout=60)
            urgent = advisory("alert", title="Dangerous dog", priority=Priority.URGENT)
            return save(web, urgent, at=now), True

        change_and_queue(web, ConsoleSends(web.clock.monotonic), compose_send)
        assert len(urgent_queued(web)) == 1
        (process,) = started
        try:
            assert process.proc.wait(120) == 0, process.lines
        finally:
            process.stop()
        # Once the console let go, the command took the turn and read the settled file.
        listed = run_cli("advisories", "list", "--json", config=config)
        assert "Dangerous dog in Medway" in [item["title"] for item in json.loads(listed.output)]
    finally:
        web.close()
