"""The forms' work (a sign-up's confirmation, a manage link) is done off the connection
that asked for it: on one kept-alive HTTP/1.1 connection to a real uvicorn server, the
answer and the next request's answer both arrive in full while the work is still held
back; released, it reaches the relay. Shown without timing anything: the worker is held
by an Event this test owns. And the answer is byte for byte the same whether or not the
address is known."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from starlette.applications import Starlette

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.subscribers import make_subscription
from alerts.testing import SmtpSink
from alerts.web import create_app
from alerts.web.form_work import FormWork
from alerts.web.testing import bind_loopback, serve_in_thread, socket_url

KNOWN = "known@example.org"
UNKNOWN = "nobody.yet@example.org"
FORM = {"area": "medway", "frequency": "daily", "urgent": "yes"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def served(
    write_config: Callable[..., Path], sink: SmtpSink
) -> Iterator[tuple[App, Starlette, HTTPConnection]]:
    sock = bind_loopback()
    url = socket_url(sock)
    app = App(
        write_config(
            site={"base_url": url},
            delivery={
                "backend": "smtp",
                "smtp": {"host": sink.host, "port": sink.port, "security": "none", "timeout": 5},
            },
        )
    )
    web = create_app(app)
    parts = urlsplit(url)
    with serve_in_thread(web, sock):
        connection = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        yield app, web, connection
        connection.close()
    app.close()


def post(connection: HTTPConnection, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
    connection.request(
        "POST",
        path,
        body=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    return response.status, response.read()


def get(connection: HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_a_sign_up_and_the_next_request_on_the_same_connection_are_answered_while_the_work_waits(
    served: tuple[App, Starlette, HTTPConnection], sink: SmtpSink, clock: ManualClock
) -> None:
    app, web, connection = served
    # Known: subscribed once, and left; asking again sends a confirmation.
    known = app.store.subscribers.add(
        make_subscription(app.gazetteer, KNOWN, ["medway"], frequency="daily"), now=app.now()
    )
    app.store.subscribers.unsubscribe(known.id, now=app.now())
    clock.advance(timedelta(days=1))
    work: FormWork = web.state.form_work
    assert work.running  # the lifespan started it, as under 'alerts web'
    gate = threading.Event()
    held = threading.Event()

    def hold() -> None:
        held.set()
        gate.wait(30)

    try:
        assert work.submit(hold)
        assert held.wait(10)  # the worker is inside hold(): everything after it waits

        status, body = post(connection, "/subscribe", {"email": KNOWN, **FORM})
        assert status == 200 and b"Check your email" in body
        socket_used = connection.sock
        status, body = post(connection, "/manage", {"email": KNOWN})
        assert status == 200 and b"</html>" in body
        status, body = get(connection, "/subscribe")
        assert status == 200 and b"</html>" in body
        assert connection.sock is socket_used  # one kept-alive connection throughout
        # Nothing of the work has run: both jobs still wait behind the held one.
        assert work.waiting() == 2
        assert app.store.outbox.due(app.now()) == 0
    finally:
        gate.set()

    def drained() -> bool:
        return work.waiting() == 0 and app.store.outbox.due(app.now()) >= 1

    pause = threading.Event()
    for _ in range(500):
        if drained():
            break
        pause.wait(0.02)
    assert drained(), "the worker never did the sign-up's work"
    report = send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    assert sink.wait_for(report.sent, timeout=10)
    # The sign-up's confirmation, really delivered (manage-by-email sends nothing to an
    # address that left).
    [received] = sink.received
    assert list(received.rcpt_tos) == [KNOWN]
    assert str(received.message()["Subject"]).startswith("Confirm your")


def test_the_answer_is_the_same_bytes_whether_or_not_the_address_is_known(
    served: tuple[App, Starlette, HTTPConnection],
) -> None:
    app, _web, connection = served
    unknown_sign_up = post(connection, "/subscribe", {"email": UNKNOWN, **FORM})
    unknown_manage = post(connection, "/manage", {"email": UNKNOWN})
    # Now it is known (pending, from the sign-up above); then active.
    pending_sign_up = post(connection, "/subscribe", {"email": UNKNOWN, **FORM})
    pending_manage = post(connection, "/manage", {"email": UNKNOWN})
    found = app.store.subscribers.find_mailbox(UNKNOWN)
    assert found is not None
    app.store.subscribers.confirm(found.id, now=app.now())
    active_sign_up = post(connection, "/subscribe", {"email": UNKNOWN, **FORM})
    active_manage = post(connection, "/manage", {"email": UNKNOWN})

    assert unknown_sign_up[0] == 200 and unknown_manage[0] == 200
    assert unknown_sign_up == pending_sign_up == active_sign_up
    assert unknown_manage == pending_manage == active_manage


def test_a_full_queue_is_answered_busy_and_nothing_is_done(
    served: tuple[App, Starlette, HTTPConnection],
) -> None:
    app, web, connection = served
    full = FormWork(capacity=1)
    full.start()
    gate, held = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        gate.wait(30)

    def nothing() -> None:
        pass

    try:
        assert full.submit(hold)
        assert held.wait(10)  # the worker is busy with it
        assert full.submit(nothing)  # the one place in the queue is taken
        web.state.form_work = full
        status, body = post(connection, "/subscribe", {"email": UNKNOWN, **FORM})
        assert status == 503 and b"Please try again in a minute" in body
        assert app.store.subscribers.find_mailbox(UNKNOWN) is None
    finally:
        gate.set()
        full.stop()


def busy_counts(connection: HTTPConnection) -> dict[str, float]:
    """``alerts_form_busy_total`` by form, as the operator's Prometheus scrapes it."""
    status, body = get(connection, "/metrics")
    assert status == 200
    return {
        form: float(value)
        for form, value in re.findall(
            r'^alerts_form_busy_total\{form="(\w+)"\} (\S+)$', body.decode(), re.MULTILINE
        )
    }


def test_metrics_count_the_posts_a_full_queue_answered_busy_by_form(
    served: tuple[App, Starlette, HTTPConnection],
) -> None:
    _app, web, connection = served
    assert busy_counts(connection) == {"subscribe": 0.0, "manage": 0.0}
    own: FormWork = web.state.form_work
    full = FormWork(capacity=1)
    full.start()
    gate, held = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        gate.wait(30)

    try:
        assert full.submit(hold)
        assert held.wait(10)
        assert full.submit(lambda: None)  # the one place in the queue is taken
        web.state.form_work = full
        for _ in range(2):
            assert post(connection, "/subscribe", {"email": UNKNOWN, **FORM})[0] == 503
        assert post(connection, "/manage", {"email": UNKNOWN})[0] == 503
        assert busy_counts(connection) == {"subscribe": 2.0, "manage": 1.0}
    finally:
        web.state.form_work = own
        gate.set()
        full.stop()
    # Room again (the app's own queue): a post goes through and is not counted.
    assert post(connection, "/subscribe", {"email": KNOWN, **FORM})[0] == 200
    assert busy_counts(connection) == {"subscribe": 2.0, "manage": 1.0}


def test_stopping_the_worker_first_finishes_what_is_queued() -> None:
    work = FormWork(capacity=10)
    work.start()
    gate, done = threading.Event(), list[int]()

    def wait() -> None:
        gate.wait(30)

    assert work.submit(wait)
    for n in range(3):
        assert work.submit(functools.partial(done.append, n))
    gate.set()
    work.stop()
    assert done == [0, 1, 2] and not work.running
