"""Latency: an urgent advisory file appears in the watched folder -> the first, and the
last, of its messages accepted by an SMTP relay on loopback, through a real ``alerts
serve`` (its own process), for N subscribers of mixed frequencies (immediate, daily and
weekly, all wanting urgent alerts, so every one of them is mailed at once).

    .venv/bin/python benchmarks/latency.py [--sizes 1000,10000] [--runs 3] [--database URL]
        [--confirmations 5] [--senders 0] [--sender-processes auto] [--relay auto]
        [--connections 4]

Set-up (not timed): a fresh SQLite database (or the PostgreSQL URL given, in a schema
of its own), N subscribers in Medway, the relay on loopback, ``alerts serve`` started
(with its own sender processes, ``delivery.sender_processes``: on PostgreSQL ``auto``
starts one per core beyond the first, sharing ``--connections``) and its start-up job
done, and ``--senders`` more sender processes (``alerts send --follow``, each with
``--connections`` of its own) beside it. The relay: Postfix's ``smtp-sink`` (in C, its
own process; Debian's postfix package, which ``make test`` installs), or with ``--relay
aiosmtpd`` (or where smtp-sink is missing) aiosmtpd in this process, which takes about
700 messages a second here and a core to do it: then the relay is the limit at scale.

Timed, per run: a new urgent advisory is written to a staging folder and renamed into
the watched folder (the instant it "appears"); the relay records the time it accepts
each message. Prints, per size, the median over the runs of: first acceptance, last
acceptance, and messages per second from the first to the last; and the parts of the
first: the files job (settle wait, ingest, queue) from ``alerts serve``'s log; and the
CPU seconds per 1,000 messages of ``alerts serve`` (with its sender processes) and the ``--senders`` processes (all threads: ingest, queue, build,
send, mark; steadier than wall times on a shared machine) and, on PostgreSQL, of the
server's backends serving the benchmark's database (those alive at the end of the run).
Then the floor, in the same session against the same relay: plain smtplib handing as
many copies of one of the run's messages to it over as many connections (median of the
runs), and the ratio of the last acceptance to it. The load average is printed at start
and end: the machine may be shared.
Aim (issue 20): first <= 5 s, 10,000 <= 20 s and 100,000 <= 120 s, on PostgreSQL too.

Then, with ``alerts serve`` and ``alerts web --no-send`` running (the confirmation goes
through the cross-process wake-up) and again with ``alerts web`` alone (it sends them
itself): a sign-up form POST -> its confirmation accepted by the relay, median of
``--confirmations`` sign-ups.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy.engine import make_url

from alerts.app import App
from alerts.message import MessageFactory
from alerts.testing import SmtpSink
from alerts.types import OutboxItem

# The seeding helpers live with the tests (tests/support), which are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.benchmarking import Arrivals, CSink, advisory, postgres_schema
from tests.support.processes import AlertsProcess, free_port
from tests.support.seeding import seed_subscribers

REPO = Path(__file__).resolve().parent.parent


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far, all its threads (0: gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (serve's ``delivery.sender_processes``)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def backends(database: str | None) -> dict[int, float]:
    """PostgreSQL backend pid -> CPU seconds, for the backends connected to ``database``
    (read from /proc: the server runs on this machine)."""
    if not database:
        return {}
    name = make_url(database).database
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # A backend's title: "postgres: USER DATABASE HOST(PORT) STATE".
        if title.startswith("postgres: ") and f" {name} " in title:
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


@dataclass(frozen=True)
class Setup:
    """What a run is measured with (the command line's options)."""

    connections: int
    senders: int
    relay: str
    sender_processes: str


def run_size(size: int, runs: int, database: str | None, setup: Setup) -> dict[str, Any]:
    if database:
        with postgres_schema(database) as url:
            return _run_size(size, runs, url, setup)
    return _run_size(size, runs, None, setup)


def _run_size(size: int, runs: int, database: str | None, setup: Setup) -> dict[str, Any]:
    connections, senders = setup.connections, setup.senders
    with tempfile.TemporaryDirectory(prefix="alerts-latency-") as tmp:
        root = Path(tmp)
        folder, staging = root / "advisories", root / "staging"
        folder.mkdir()
        staging.mkdir()
        clock = Arrivals()
        relay_sink = (
            CSink(clock) if setup.relay == "smtp-sink" else SmtpSink(keep=False, on_accept=clock)
        )
        with relay_sink as sink:
            config = root / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "database": database or f"sqlite:///{root / 'alerts.db'}",
                        "templates": str(REPO / "templates"),
                        "sources": [{"path": str(folder)}],
                        "feeds": {"out": str(root / "feeds")},
                        "delivery": {
                            "backend": "smtp",
                            "smtp": {
                                "host": sink.host,
                                "port": sink.port,
                                "security": "none",
                                "connections": connections,
                                "per_connection": 1000,
                            },
                            "sender_processes": (
                                setup.sender_processes
                                if setup.sender_processes == "auto"
                                else int(setup.sender_processes)
                            ),
                        },
                        "email": {
                            "from": "Kent Area Alerts <alerts@example.org>",
                            "domain": "example.org",
                        },
                        "security": {"secret_key_file": str(root / "secret.key")},
                    }
                ),
                encoding="utf-8",
            )
            app = App(config)
            seed_subscribers(app.store, count=size, now=datetime.now(UTC))
            app.close()
            serve = AlertsProcess(config, "serve", cwd=str(REPO))
            extra = [
                AlertsProcess(config, "send", "--follow", cwd=str(REPO)) for _ in range(senders)
            ]
            processes = [serve, *extra]

            def cpu() -> float:
                return sum(cpu_seconds(pid) for p in processes for pid in with_children(p.proc.pid))

            try:
                serve.wait_for("watching ", timeout=120)
                serve.wait_for("startup: ", timeout=120)
                for process in extra:
                    process.wait_for("sending until stopped", timeout=120)
                firsts, lasts, rates, jobs, cpus, db_cpus = [], [], [], [], [], []
                for run in range(runs):
                    done = len(clock.times)
                    mark = serve.mark()
                    cpu_before, db_before = cpu(), backends(database)
                    path = staging / f"urgent-{run}.md"
                    path.write_text(advisory(run), encoding="utf-8")
                    appeared = time.time()
                    os.rename(path, folder / path.name)
                    if not clock.wait(done + size, timeout=600):
                        raise SystemExit(
                            f"only {len(clock.times) - done} of {size} messages arrived in 600 s"
                        )
                    with clock.lock:
                        times = clock.times[done : done + size]
                    cpus.append((cpu() - cpu_before) * 1000 / size)
                    db_after = backends(database)
                    db_cpus.append(
                        sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
                        * 1000
                        / size
                    )
                    first, last = min(times) - appeared, max(times) - appeared
                    firsts.append(first)
                    lasts.append(last)
                    rates.append((size - 1) / (last - first) if last > first else float("inf"))
                    job = serve.wait_for("files: 1 new", after=mark)
                    jobs.append(float(job.get("seconds", 0.0)))
                    print(
                        f"  run {run + 1}: first {first:.2f} s, last {last:.2f} s, files job {jobs[-1]:.2f} s,"
                        f" cpu {cpus[-1]:.3f} s/1k, db cpu {db_cpus[-1]:.3f} s/1k",
                        file=sys.stderr,
                    )
            finally:
                for process in processes:
                    process.stop()
            # The floor, against the same relay in the same session: plain smtplib sending
            # as many messages of the same size over the same number of connections.
            message = one_message(config)
            floors = [smtp_floor(sink.port, message, size, connections) for _ in range(runs)]
    return {
        "size": size,
        "first": statistics.median(firsts),
        "last": statistics.median(lasts),
        "rate": statistics.median(rates),
        "job": statistics.median(jobs),
        "cpu": statistics.median(cpus),
        "db_cpu": statistics.median(db_cpus),
        "floor": statistics.median(floors),
    }


def one_message(config: Path) -> bytes:
    """One of the messages the run sent, built again as the sender built it."""
    app = App(config)
    try:
        [row] = app.store.fixtures.outbox_rows(limit=1)
        factory = MessageFactory(app.config.mail, app.store, app.now)
        return factory.build(
            OutboxItem(
                row["id"], row["subscriber_id"], row["digest_id"], row["message_id"], row["email"]
            )
        )
    finally:
        app.close()


def smtp_floor(
    port: int, message: bytes, count: int, connections: int, per_connection: int = 1000
) -> float:
    """Seconds for plain smtplib to hand ``count`` copies of ``message`` to the relay."""

    def work(share: int) -> None:
        sent = 0
        while sent < share:
            smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=30)
            for _ in range(min(per_connection, share - sent)):
                smtp.sendmail("alerts@example.org", [f"floor{sent}@example.org"], message)
                sent += 1
            smtp.quit()

    shares = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]
    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def confirmations(count: int, *, alone: bool) -> float:
    """Median seconds from a sign-up POST to its confirmation at the relay."""
    with tempfile.TemporaryDirectory(prefix="alerts-latency-") as tmp:
        root = Path(tmp)
        (root / "advisories").mkdir()
        port = free_port()
        clock = Arrivals()
        with SmtpSink(keep=False, on_accept=clock) as sink:
            config = root / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "database": f"sqlite:///{root / 'alerts.db'}",
                        "templates": str(REPO / "templates"),
                        "sources": [{"path": str(root / "advisories")}],
                        "feeds": {"out": str(root / "feeds")},
                        "site": {"base_url": f"http://127.0.0.1:{port}"},
                        "delivery": {
                            "backend": "smtp",
                            "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
                        },
                        "email": {
                            "from": "Kent Area Alerts <alerts@example.org>",
                            "domain": "example.org",
                        },
                        "security": {"secret_key_file": str(root / "secret.key")},
                    }
                ),
                encoding="utf-8",
            )
            started = []
            try:
                if not alone:
                    started.append(AlertsProcess(config, "serve", cwd=str(REPO)))
                    started[-1].wait_for("startup: ", timeout=120)
                web = AlertsProcess(
                    config,
                    "web",
                    "--port",
                    str(port),
                    *([] if alone else ["--no-send"]),
                    cwd=str(REPO),
                )
                started.append(web)
                web.wait_for("serving ", timeout=120)
                with httpx.Client(timeout=30) as client:
                    for _ in range(100):  # uvicorn says 'serving' just before it listens
                        try:
                            client.get(f"http://127.0.0.1:{port}/subscribe")
                            break
                        except httpx.ConnectError:
                            time.sleep(0.05)
                    took = []
                    for number in range(count):
                        done = len(clock.times)
                        posted = time.time()
                        client.post(
                            f"http://127.0.0.1:{port}/subscribe",
                            data={
                                "email": f"new{number}@example.org",
                                "areas": "Medway",
                                "frequency": "daily",
                            },
                        )
                        if not clock.wait(done + 1, timeout=120):
                            raise SystemExit("a confirmation did not arrive within 120 s")
                        took.append(clock.times[done] - posted)
            finally:
                for process in started:
                    process.stop()
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="subscriber counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4, help="delivery.smtp.connections")
    parser.add_argument(
        "--database", help="a PostgreSQL URL (default: SQLite in a temporary folder)"
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=0,
        help="'alerts send --follow' processes beside alerts serve (each with --connections)",
    )
    parser.add_argument(
        "--relay",
        choices=["auto", "aiosmtpd", "smtp-sink"],
        default="auto",
        help="the loopback relay: Postfix's smtp-sink, in C (Debian's postfix package, which"
        " 'make test' installs), or aiosmtpd in this process (about 700 messages a second"
        " here: the limit at scale); auto: smtp-sink where it is installed",
    )
    parser.add_argument(
        "--sender-processes",
        default="auto",
        help="delivery.sender_processes: serve's own sender processes (auto, or a number)",
    )
    parser.add_argument("--confirmations", type=int, default=5, help="sign-ups to time (0: none)")
    args = parser.parse_args()
    if args.relay == "auto":
        args.relay = "smtp-sink" if CSink.installed() else "aiosmtpd"
    setup = Setup(args.connections, args.senders, args.relay, args.sender_processes)
    sizes = [int(s) for s in args.sizes.split(",")]
    backend = "postgresql" if args.database else "sqlite"
    print(
        f"latency: file appears -> relay accepts; {backend}, {args.connections} connections,"
        f" {args.senders} 'alerts send --follow' beside serve, sender_processes"
        f" {args.sender_processes}, relay {args.relay},"
        f" median of {args.runs} runs"
    )
    print(
        f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    print(
        f"{'subscribers':>12} {'first (s)':>10} {'last (s)':>10} {'msg/s':>8} {'files job (s)':>14}"
        f" {'floor (s)':>10} {'last/floor':>10} {'cpu s/1k':>9} {'db cpu s/1k':>12}"
    )
    for size in sizes:
        result = run_size(size, args.runs, args.database, setup)
        print(
            f"{result['size']:>12,} {result['first']:>10.2f} {result['last']:>10.2f} "
            f"{result['rate']:>8.0f} {result['job']:>14.2f} {result['floor']:>10.2f}"
            f" {result['last'] / result['floor']:>10.2f} {result['cpu']:>9.3f} {result['db_cpu']:>12.3f}"
        )
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.confirmations:
        print(
            f"sign-up POST -> confirmation at the relay (sqlite, median of {args.confirmations}):"
        )
        print(
            f"  alerts serve + alerts web --no-send: {confirmations(args.confirmations, alone=False):.2f} s"
        )
        print(
            f"  alerts web alone:                    {confirmations(args.confirmations, alone=True):.2f} s"
        )


if __name__ == "__main__":
    main()
