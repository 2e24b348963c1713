"""``alerts serve``'s sender processes (``delivery.sender_processes``,
:mod:`alerts.delivery.processes`): on PostgreSQL it starts ``alerts send --follow``
children that share a large send on other cores. Followed as an operator sees it, through
real processes, a real relay on loopback and the log: every subscriber gets an urgent
alert once, the children stop when serve stops (SIGTERM) or dies (kill -9), and one
that dies is started again."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from alerts.app import App
from alerts.config import DeliveryConfig, SmtpConfig
from alerts.delivery.processes import AUTO_MAX, connection_shares, sender_process_count
from alerts.testing import SmtpSink
from alerts.web import create_app
from tests.scheduler.test_fast_path import ARRIVAL, relay_config, today
from tests.support.advisory_files import write_advisory
from tests.support.processes import AlertsProcess
from tests.support.seeding import seed_subscribers

SQLITE = "sqlite:///alerts.db"
POSTGRES = "postgresql://postgres@127.0.0.1/test"
RELAY = SmtpConfig(host="127.0.0.1", port=25, security="none")


# -- how many --------------------------------------------------------------------------


def test_auto_is_one_per_core_beyond_the_first_on_postgresql_with_a_relay_at_most_three() -> None:
    delivery = DeliveryConfig(backend="smtp", smtp=RELAY)
    assert [sender_process_count(delivery, POSTGRES, cpus) for cpus in (1, 2, 4, 16)] == [
        0,
        1,
        3,
        AUTO_MAX,
    ]


def test_auto_is_none_on_sqlite_or_with_the_maildir_and_a_number_is_taken_as_it_is() -> None:
    assert sender_process_count(DeliveryConfig(backend="smtp", smtp=RELAY), SQLITE, 8) == 0
    assert sender_process_count(DeliveryConfig(backend="maildir"), POSTGRES, 8) == 0
    two = DeliveryConfig(backend="smtp", smtp=RELAY, sender_processes=2)
    assert sender_process_count(two, SQLITE, 1) == 2
    none = DeliveryConfig(backend="smtp", smtp=RELAY, sender_processes=0)
    assert sender_process_count(none, POSTGRES, 8) == 0


def test_each_sender_process_opens_up_to_the_configured_connections() -> None:
    def shares(connections: int, children: int) -> list[int | None]:
        smtp = SmtpConfig(host="127.0.0.1", port=25, security="none", connections=connections)
        return connection_shares(DeliveryConfig(backend="smtp", smtp=smtp), children)

    assert shares(4, 0) == [4]
    assert shares(4, 1) == [4, 4]
    assert shares(2, 3) == [2, 2, 2, 2]
    assert connection_shares(DeliveryConfig(backend="maildir"), 2) == [None, 1, 1]


@pytest.mark.parametrize("value", ["many", -1, 17])
def test_a_bad_count_is_refused_naming_the_key(
    write_config: Callable[..., Path], run_cli: Callable[..., object], value: object
) -> None:
    config = write_config(delivery={"backend": "maildir", "sender_processes": value})
    result = run_cli("--config", str(config), "status")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "delivery.sender_processes" in result.output  # type: ignore[attr-defined]


# -- serve with its children -----------------------------------------------------------


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _drop_urgent(staging: Path, folder: Path, name: str) -> None:
    write_advisory(
        staging,
        name,
        title=f"Dangerous dog loose in Chatham ({name})",
        url=f"https://www.kent.police.uk/news/{name}/",
        date=today(),
        area="Medway",
        priority="urgent",
        body="Residents of Chatham: keep children indoors.",
    ).rename(folder / f"{name}.md")


def _child_pid(serve: AlertsProcess, after: int = 0) -> int:
    line = serve.wait_for("sender process 1 started", after=after)
    return int(str(line["message"]).rsplit("pid ", 1)[1].rstrip(")"))


def _with_one_child(
    write_config: Callable[..., Path],
    sink: SmtpSink,
    advisory_dir: Path,
    database: str,
    subscribers: int = 0,
) -> tuple[Path, list[str]]:
    """A config for serve with one sender process beside it, and the seeded addresses."""
    settings = relay_config(sink, advisory_dir)
    settings["delivery"]["sender_processes"] = 1
    config = write_config(database=database, **settings)
    app = App(config)
    addresses = (
        seed_subscribers(app.store, count=subscribers, now=datetime.now(UTC)) if subscribers else []
    )
    app.close()
    return config, addresses


@pytest.mark.slow
@pytest.mark.postgres
def test_on_postgresql_serve_starts_a_sender_process_and_every_subscriber_gets_the_alert_once(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
    postgres_url: str,
) -> None:
    with SmtpSink() as sink:
        config, addresses = _with_one_child(
            write_config, sink, advisory_dir, postgres_url, subscribers=300
        )
        serve = processes(config, "serve")
        start = serve.wait_for("serving ")
        assert (
            "sending from this process and 1 more (delivery.sender_processes),"
            " 2 + 2 connections to the relay"  # relay_config's 2 each
        ) in str(start["message"])
        child = _child_pid(serve)
        serve.wait_for("sending until stopped")  # the child's own line, in serve's log
        serve.wait_for("startup: ")
        _drop_urgent(staging, advisory_dir, "dangerous-dog")
        assert sink.wait_for(len(addresses), timeout=ARRIVAL), (
            f"{sink.count} of {len(addresses)} arrived"
        )
        serve.wait_for("files: 1 new")
        time.sleep(1)  # anything sent twice would have arrived by now
        received = sorted(r for message in sink.received for r in message.rcpt_tos)
        assert received == sorted(addresses)
        # Both processes sent some: the child shares the work.
        sends = [line for line in serve.lines if '"sender: ' in line and " sent" in line]
        assert len({_pid_of(line) for line in sends}) == 2, sends
        assert serve.stop() == 0
        assert _wait_gone(child, timeout=5), "the sender process outlived serve's SIGTERM"


def _pid_of(line: str) -> int:
    return int(json.loads(line)["pid"])


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sender_process_stops_by_itself_when_serve_is_killed_outright(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
    postgres_url: str,
) -> None:
    with SmtpSink() as sink:
        config, _ = _with_one_child(write_config, sink, advisory_dir, postgres_url)
        serve = processes(config, "serve")
        child = _child_pid(serve)
        serve.wait_for("sending until stopped")
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(30)
        assert _wait_gone(child), "the sender process outlived serve (kill -9)"
        assert "standard input closed" in "\n".join(serve.lines)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sender_process_that_dies_is_started_again_and_mail_still_goes_once(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    staging: Path,
    processes: Callable[..., AlertsProcess],
    postgres_url: str,
) -> None:
    with SmtpSink() as sink:
        config, addresses = _with_one_child(
            write_config, sink, advisory_dir, postgres_url, subscribers=40
        )
        serve = processes(config, "serve")
        first = _child_pid(serve)
        serve.wait_for("startup: ")
        mark = serve.mark()
        os.kill(first, signal.SIGKILL)
        ended = serve.wait_for("ended by itself", after=mark)
        assert f"(pid {first}) ended by itself with signal SIGKILL" in str(ended["message"])
        second = _child_pid(serve, after=mark)
        assert second != first and _alive(second)
        _drop_urgent(staging, advisory_dir, "loose-dog")
        assert sink.wait_for(len(addresses), timeout=ARRIVAL)
        serve.wait_for("files: 1 new", after=mark)
        time.sleep(1)
        received = sorted(r for message in sink.received for r in message.rcpt_tos)
        assert received == sorted(addresses)
        assert serve.stop() == 0
        assert _wait_gone(second, timeout=5)


@pytest.mark.slow
def test_on_sqlite_serve_sends_from_its_own_process_only(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
) -> None:
    with SmtpSink() as sink:
        config = write_config(**relay_config(sink, advisory_dir))
        serve = processes(config, "serve")
        start = serve.wait_for("serving ")
        assert "sending from this process and 0 more" in str(start["message"])
        serve.wait_for("startup: ")
        assert not any("sender process" in line for line in serve.lines)


# -- alerts status and /metrics list them ----------------------------------------------


def _live_senders(config: Path) -> dict[str, float]:
    """/metrics' gauge of the senders that run, by role."""
    app = App(config)
    try:
        response = TestClient(create_app(app)).get("/metrics")
    finally:
        app.close()
    assert response.status_code == 200
    (family,) = [
        f
        for f in text_string_to_metric_families(response.text)
        if f.name == "alerts_sender_processes"
    ]
    return {sample.labels["role"]: sample.value for sample in family.samples}


@pytest.mark.slow
def test_status_and_metrics_list_serve_and_its_sender_process_while_they_run(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
    run_cli: Callable[..., Any],
    db_url: str,
) -> None:
    """The operator sees serve's own sender and its sender process in 'alerts status'
    (pid, since when, last seen) and in /metrics while serve runs; once serve stopped,
    neither is listed as running."""
    with SmtpSink() as sink:
        config, _ = _with_one_child(write_config, sink, advisory_dir, db_url)
        serve = processes(config, "serve")
        child = _child_pid(serve)
        serve.wait_for("sending until stopped")  # the child's sender runs (and is listed)
        serve.wait_for("startup: ")  # serve's own sender started before its jobs
        status = run_cli("status", config=config)
        assert status.exit_code == 0, status.output
        lines = status.output.splitlines()
        assert "Senders: 2 running" in lines, status.output
        assert any(
            line.startswith(f"  alerts serve's sender: pid {serve.proc.pid} on ")
            and " since " in line
            and " last seen " in line
            for line in lines
        ), status.output
        assert any(line.startswith(f"  alerts send --follow: pid {child} on ") for line in lines), (
            status.output
        )
        listed = json.loads(run_cli("status", "--json", config=config).output)["senders"]
        assert sorted((s["role"], s["pid"]) for s in listed) == [
            ("send", child),
            ("serve", serve.proc.pid),
        ]
        assert _live_senders(config) == {"serve": 1.0, "send": 1.0, "web": 0.0}
        assert serve.stop() == 0
        assert _wait_gone(child, timeout=30)
        after = run_cli("status", config=config)
        assert "Senders: none running" in after.output.splitlines(), after.output
        assert str(child) not in after.output
        assert _live_senders(config) == {"serve": 0.0, "send": 0.0, "web": 0.0}


@pytest.mark.slow
def test_a_sender_killed_outright_is_no_longer_listed_as_running(
    write_config: Callable[..., Path],
    advisory_dir: Path,
    processes: Callable[..., AlertsProcess],
    run_cli: Callable[..., Any],
    db_url: str,
) -> None:
    """kill -9 leaves serve's row behind; it is not listed as running all the same (on
    PostgreSQL its lock went with its connection, on SQLite its pid is gone)."""
    with SmtpSink() as sink:
        config, _ = _with_one_child(write_config, sink, advisory_dir, db_url)
        serve = processes(config, "serve")
        child = _child_pid(serve)
        serve.wait_for("sending until stopped")
        serve.wait_for("startup: ")
        assert "Senders: 2 running" in run_cli("status", config=config).output
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait(30)
        assert _wait_gone(child), "the sender process outlived serve (kill -9)"
        status = run_cli("status", config=config)
        assert "Senders: none running" in status.output.splitlines(), status.output
        assert _live_senders(config) == {"serve": 0.0, "send": 0.0, "web": 0.0}
