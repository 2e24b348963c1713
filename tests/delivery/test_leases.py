"""Claims and leases on the outbox (SQLite and PostgreSQL): a claimed row is nobody
else's until its lease runs out; a dead worker's rows come back; a worker that lost
its lease cannot undo what the new holder did."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from alerts.delivery import Dispatcher, SendQueue, make_outbox, make_sender
from alerts.message import OutboxItem
from alerts.store import engine_url
from alerts.store.outbox import Outcomes
from alerts.store.senders import SENDER_LOCKS, sender_lock_key, sender_name
from alerts.testing import SmtpSink, bare_message_id
from tests.support import NOW
from tests.support.delivery import queue, rows, statuses
from tests.support.sections import Stages
from tests.support.seeding import PlainMessageFactory
from tests.support.tables import outbox_rows, set_columns


def an_outbox(app: Stages) -> SendQueue:
    return make_outbox(app.delivery, app.store)


def test_claimed_rows_are_held_under_a_lease_and_not_claimed_twice(smtp_mailer: Stages) -> None:
    queue(smtp_mailer, 5)
    box = an_outbox(smtp_mailer)

    first, _ = box.claim("worker-a", 3, NOW)
    second, _ = box.claim("worker-b", 10, NOW)

    assert len(first) == 3 and len(second) == 2
    assert not {c.item.outbox_id for c in first} & {c.item.outbox_id for c in second}
    held = {row["claimed_by"] for row in rows(smtp_mailer).values()}
    assert held == {"worker-a", "worker-b"}
    assert all(row["claimed_until"] == NOW + box.lease for row in rows(smtp_mailer).values())
    assert box.claim("worker-c", 10, NOW + box.lease - timedelta(seconds=1)) == ([], 0)


def test_rows_whose_lease_ran_out_are_claimed_again_with_the_same_message_id(
    smtp_mailer: Stages,
) -> None:
    ids = queue(smtp_mailer, 2)
    box = an_outbox(smtp_mailer)
    box.claim("crashed-worker", 10, NOW)

    again, _ = box.claim("worker-b", 10, NOW + box.lease + timedelta(seconds=1))

    assert sorted(bare_message_id(c.item.message_id) for c in again) == sorted(ids)
    assert {row["claimed_by"] for row in rows(smtp_mailer).values()} == {"worker-b"}


def test_a_worker_that_lost_its_lease_cannot_undo_the_new_holders_result(
    smtp_mailer: Stages,
) -> None:
    [message_id] = queue(smtp_mailer, 1)
    box = an_outbox(smtp_mailer)
    [stale], _ = box.claim("slow-worker", 1, NOW)
    later = NOW + box.lease + timedelta(seconds=1)
    [fresh], _ = box.claim("worker-b", 1, later)
    box.record("worker-b", Outcomes(sent=[fresh.item.outbox_id]), later)

    box.record("slow-worker", Outcomes(deferred=[(stale, "451 try later")]), later)

    row = rows(smtp_mailer)[message_id]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)


def test_acceptance_is_recorded_even_by_a_worker_that_lost_its_lease(smtp_mailer: Stages) -> None:
    [message_id] = queue(smtp_mailer, 1)
    box = an_outbox(smtp_mailer)
    [stale], _ = box.claim("slow-worker", 1, NOW)
    box.claim("worker-b", 1, NOW + box.lease + timedelta(seconds=1))

    box.record("slow-worker", Outcomes(sent=[stale.item.outbox_id]), NOW + box.lease)

    assert rows(smtp_mailer)[message_id]["status"] == "sent"


def test_renewing_extends_only_the_rows_a_worker_still_holds(smtp_mailer: Stages) -> None:
    queue(smtp_mailer, 2)
    box = an_outbox(smtp_mailer)
    mine, _ = box.claim("worker-a", 2, NOW)
    later = NOW + box.lease + timedelta(seconds=1)
    [taken], _ = box.claim("worker-b", 1, later)

    held = box.renew("worker-a", [c.item.outbox_id for c in mine], later)

    assert held == {c.item.outbox_id for c in mine} - {taken.item.outbox_id}


def test_released_rows_are_pending_again_without_counting_an_attempt(smtp_mailer: Stages) -> None:
    queue(smtp_mailer, 3)
    box = an_outbox(smtp_mailer)
    claimed, _ = box.claim("worker-a", 3, NOW)

    box.release("worker-a", [c.item.outbox_id for c in claimed])

    assert statuses(smtp_mailer) == {"pending": 3}
    assert all(
        row["attempts"] == 0 and row["claimed_by"] is None for row in rows(smtp_mailer).values()
    )


def test_on_sqlite_rows_held_by_a_dead_process_of_this_machine_are_freed_at_once(
    make_mailer, sqlite_url: str
) -> None:
    app = make_mailer(database=sqlite_url)
    queue(app, 4)
    box = an_outbox(app)
    box.claim("placeholder", 4, NOW)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    set_columns(
        app.store.engine,
        "outbox",
        {"claimed_by": f"{socket.gethostname()[:60]}:{int(dead.stdout)}:0:cafe"},
    )

    assert box.reclaim_orphans() == 4
    assert statuses(app) == {"pending": 4}


def test_rows_held_by_a_live_process_are_left_to_their_lease(make_mailer, sqlite_url: str) -> None:
    app = make_mailer(database=sqlite_url)
    queue(app, 2)
    box = an_outbox(app)
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as alive:
        box.claim(f"{socket.gethostname()[:60]}:{alive.pid}:0:cafe", 2, NOW)
        assert box.reclaim_orphans() == 0
        assert alive.stdin is not None
        alive.stdin.close()
    assert {row["status"] for row in outbox_rows(app.store.engine)} == {"sending"}


def test_a_worker_renews_its_lease_as_it_goes_and_skips_rows_it_lost(
    smtp_mailer: Stages, sink: SmtpSink
) -> None:
    ids = queue(smtp_mailer, 6)
    box = an_outbox(smtp_mailer)
    taken: list[int] = []

    class TakeOverOne:
        """Builds normally; on the first build another worker takes over the last row."""

        def __init__(self) -> None:
            self.plain = PlainMessageFactory(smtp_mailer.store)

        def build(self, item: OutboxItem) -> bytes:
            if not taken:
                last = outbox_rows(smtp_mailer.store.engine)[-1]["id"]
                set_columns(
                    smtp_mailer.store.engine, "outbox", {"claimed_by": "someone-else"}, id=last
                )
                taken.append(last)
            return self.plain.build(item)

    dispatcher = Dispatcher(
        outbox=box,
        builder=TakeOverOne(),
        sender=make_sender(smtp_mailer.delivery, smtp_mailer.clock),
        envelope_from="alerts@example.org",
        renew_margin=box.lease * 2,  # always short of lease: renew before every message
    )

    report = dispatcher.run(workers=1, clock=smtp_mailer.clock, now=NOW)

    assert report.sent == 5
    assert sorted(sink.message_ids()) == sorted(ids[:-1])
    assert rows(smtp_mailer)[ids[-1]]["claimed_by"] == "someone-else"


def test_the_lease_comes_from_the_config(write_config: Callable[..., Path]) -> None:
    from alerts.config import load_config
    from alerts.delivery import make_outbox
    from alerts.store import Store, create_db_engine

    config = load_config(write_config(delivery={"lease_seconds": 42}))
    outbox = make_outbox(config.delivery, Store(create_db_engine(config.database)))
    assert outbox.lease.total_seconds() == 42


def test_on_postgresql_rows_of_a_sender_whose_lock_is_gone_come_back_and_a_live_or_hung_ones_stay(
    make_mailer, postgres_url: str
) -> None:
    app = make_mailer(database=postgres_url)
    queue(app, 6)
    box = an_outbox(app)
    # Another sending process (another machine, say): it holds its lock on a session of its own.
    other = "relay-host-2:4242:0badcafe"
    box.claim(f"{other}:0", 3, NOW)
    box.claim(f"{other}:1", 3, NOW)
    session = create_engine(engine_url(postgres_url), poolclass=NullPool).connect()
    params = {"ns": SENDER_LOCKS, "key": sender_lock_key(other)}
    session.execute(text("SELECT pg_advisory_lock(:ns, :key)"), params)
    session.commit()

    assert box.reclaim_orphans() == 0, "a live (or hung) sender keeps its rows; the lease covers it"
    assert statuses(app) == {"sending": 6}
    session.close()  # the process died: the server drops its lock with its session

    assert box.reclaim_orphans() == 6
    assert statuses(app) == {"pending": 6}
    assert all(row["attempts"] == 0 and row["claimed_by"] is None for row in rows(app).values())


def test_on_postgresql_a_sender_holds_its_lock_while_it_runs_and_lets_go_after(
    make_mailer, postgres_url: str
) -> None:
    app = make_mailer(database=postgres_url)
    box = an_outbox(app)
    check = create_engine(engine_url(postgres_url), poolclass=NullPool)
    sender = sender_name()
    params = {"ns": SENDER_LOCKS, "key": sender_lock_key(sender)}

    def free() -> bool:
        with check.connect() as conn:
            taken = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar_one()
            )
            if taken:
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
            return taken

    with box.alive(sender):
        assert not free()
        assert box.reclaim_orphans() == 0
    assert free()
    check.dispose()
