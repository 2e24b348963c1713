"""Fan-out: 20,000 subscribers over the 13 Kent districts, from queued digests to every
message accepted by an SMTP server on loopback, against the floor of plain smtplib.

    .venv/bin/python benchmarks/fanout.py [--subscribers 20000] [--connections 4] [--runs 3]

Set-up (not timed): one advisory per district is stored, 20,000 active immediate
subscribers are added, and the real ``alerts.digest.queue_digests`` plans, renders and
queues their messages into a SQLite outbox, which is copied before each run.

Timed, in the same run and against the same sink (aiosmtpd in a process of its own,
from ``python -m alerts.testing``), alternating:

- pipeline: ``alerts.delivery.send_pending`` with N connections: claiming, building each
  message with the digests' MessageFactory, SMTP, and the outbox bookkeeping;
- floor: plain smtplib, N threads, sending the same number of messages of the same
  size, built beforehand, with a new connection every ``--per-connection`` messages
  as the pipeline does (so both open the same number of connections).

Prints messages per second for each (median of the runs) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from alerts.app import App
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.ingest import store_advisory
from alerts.message import MessageFactory, OutboxItem
from alerts.store.subscribers import insert_subscriber
from alerts.subscribers import make_subscription
from alerts.testing import outbox_rows
from alerts.types import AdvisoryInput, AreaKind, Frequency, SubscriberStatus

REPO = Path(__file__).resolve().parent.parent


class Sink:
    """The SMTP sink, in its own process so that it does not share a core with the sender."""

    def __init__(self, core: int | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "alerts.testing"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.process.stdout and self.process.stdin
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the sink did not start: {line!r}")
        self.port = int(line.split()[1])
        if core is not None:
            os.sched_setaffinity(self.process.pid, {core})

    def count(self) -> int:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(10)


def write_config(folder: Path, database: Path, port: int, connections: int, per_connection: int = 100) -> Path:
    path = folder / "config.yaml"
    config = {
        "database": f"sqlite:///{database}",
        "templates": str(REPO / "templates"),
        "sources": [],
        "email": {"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        "delivery": {
            "backend": "smtp",
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "connections": connections,
                "per_connection": per_connection,
            },
        },
        "security": {"secret_key_file": str(folder / "secret.key")},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def queue(config: Path, count: int) -> tuple[int, float]:
    """Advisories, subscribers, and the real digest queueing. Returns (messages, seconds)."""
    app = App(config)
    now = datetime.now(UTC)
    districts = sorted(s for s, n in app.gazetteer.nodes.items() if n.kind == AreaKind.DISTRICT)
    for area in districts:
        url = f"https://www.kent.police.uk/news/benchmark/{area}/"
        body = "<p>Residents are warned about a telephone fraudster posing as a police officer. " * 12 + "</p>"
        item = AdvisoryInput(
            key=url,
            url=url,
            title=f"Courier fraud warning for {area.replace('-', ' ').title()}",
            summary="A fraudster posing as a police officer asks for bank details.",
            body_html=body,
            body_text=body.replace("<p>", "").replace("</p>", "\n"),
            published_at=now - timedelta(hours=2),
            source="benchmark",
            areas=frozenset({area}),
            force_area="kent",
        )
        store_advisory(item, app.store, app.gazetteer, now - timedelta(hours=1))
    with app.store.engine.begin() as conn:
        for i in range(count):
            subscription = make_subscription(
                app.gazetteer, f"reader{i}@example.org", [districts[i % len(districts)]], frequency="immediate"
            )
            insert_subscriber(conn, subscription, status=SubscriberStatus.ACTIVE, now=now - timedelta(days=1))
    started = time.perf_counter()
    report = queue_digests(app.config, app.store, app.gazetteer, Frequency.IMMEDIATE, now=now)
    seconds = time.perf_counter() - started
    app.close()
    return report.messages, seconds


def prebuilt(config: Path) -> list[tuple[str, bytes]]:
    """The floor's messages: the pipeline's own, built before the clock starts."""
    app = App(config)
    factory = MessageFactory(app.config, app.store, app.now)
    messages = [
        (r["email"], factory.build(OutboxItem(r["id"], r["subscriber_id"], r["digest_id"], r["message_id"], r["email"])))
        for r in outbox_rows(app.store.engine)
    ]
    app.close()
    return messages


def run_pipeline(config: Path, queued: Path, database: Path, connections: int) -> tuple[float, int]:
    shutil.copy(queued, database)
    app = App(config)
    app.store  # connect and migrate before the clock starts  # noqa: B018
    started = time.perf_counter()
    report = send_pending(app.config, app.store, workers=connections)
    seconds = time.perf_counter() - started
    app.close()
    if report.sent == 0 or report.deferred or report.failed:
        raise SystemExit(f"pipeline run went wrong: {report.as_dict()}")
    return seconds, report.sent


def run_floor(port: int, messages: list[tuple[str, bytes]], connections: int, per_connection: int) -> float:
    def work(share: list[tuple[str, bytes]]) -> None:
        for start in range(0, len(share), per_connection):
            smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=30)
            for recipient, data in share[start : start + per_connection]:
                smtp.sendmail("alerts@example.org", [recipient], data)
            smtp.quit()

    threads = [threading.Thread(target=work, args=(messages[i::connections],)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the sink and the sender share every core (default: one core for the sink)",
    )
    parser.add_argument(
        "--per-connection",
        type=int,
        default=100,
        help="messages per SMTP session, for both (default: the config default, 100)",
    )
    args = parser.parse_args()

    # By default the sink gets one core and this process (floor and pipeline alike) the
    # other, as a relay on its own machine would; --no-pin lets them share both.
    pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    cores = sorted(os.sched_getaffinity(0))
    sink = Sink(cores[-1] if pin else None)
    if pin:
        os.sched_setaffinity(0, set(cores[:-1]))
    with tempfile.TemporaryDirectory(prefix="alerts-fanout-") as tmp:
        folder = Path(tmp)
        queued, database = folder / "queued.db", folder / "run.db"
        config = write_config(folder, queued, sink.port, args.connections)
        messages, queue_seconds = queue(config, args.subscribers)
        floor_messages = prebuilt(config)
        size = statistics.median(len(data) for _, data in floor_messages)
        print(f"queued {messages} messages for {args.subscribers} subscribers over 13 districts "
              f"in {queue_seconds:.1f} s (queue_digests); median message {size / 1024:.1f} KiB")
        run_config = write_config(folder, database, sink.port, args.connections, args.per_connection)

        pipeline_rates, floor_rates = [], []
        for run in range(1, args.runs + 1):
            before = sink.count()
            seconds = run_floor(sink.port, floor_messages, args.connections, args.per_connection)
            assert sink.count() - before == len(floor_messages), "the floor lost messages"
            floor_rates.append(len(floor_messages) / seconds)
            before = sink.count()
            seconds, sent = run_pipeline(run_config, queued, database, args.connections)
            assert sink.count() - before == sent == messages, "the pipeline lost messages"
            pipeline_rates.append(sent / seconds)
            print(f"run {run}: floor {floor_rates[-1]:7.0f} msg/s   pipeline {pipeline_rates[-1]:7.0f} msg/s")
    sink.close()

    floor, pipeline = statistics.median(floor_rates), statistics.median(pipeline_rates)
    print(f"{args.connections} connections at a time, {args.per_connection} messages per connection; "
          f"sink {'on a core of its own' if pin else 'sharing the cores'}; medians of {args.runs} runs")
    print(f"floor (plain smtplib, pre-built):           {floor:7.0f} msg/s")
    print(f"pipeline (send_pending: claim, build, send, mark): {pipeline:7.0f} msg/s")
    print(f"ratio floor/pipeline: {floor / pipeline:.2f}x (aim: at most 1.25x)")


if __name__ == "__main__":
    main()
