"""Fan-out: 20,000 subscribers over the 13 Kent districts, from queued digests to every
message accepted by an SMTP server on loopback, against the floor of plain smtplib.

    .venv/bin/python benchmarks/fanout.py [--subscribers 20000] [--connections 4] [--runs 3] [--dkim [--ed25519]]

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

With ``--durability`` a third run marks the accepted messages sent in batches (every 50
rows or 0.2 s, as before issue 11) instead of each at once in a commit of its own (SQLite
WAL, synchronous=NORMAL): what bounding the repeats after kill -9 to one message per
connection costs.

With ``--dkim`` a further, signed, run is timed in each round: the same pipeline with a
2048-bit RSA DKIM key (and with ``--ed25519`` an Ed25519 signature as well), and the
ratio of its time to the unsigned pipeline's in the same round is printed (aim: at most
1.3x).

Prints messages per second for each (median of the runs) and the ratios.
"""

from __future__ import annotations

import argparse
import functools
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from alerts import delivery
from alerts.app import App
from alerts.delivery import Dispatcher, send_pending
from alerts.digest import queue_digests
from alerts.ingest import store_advisory
from alerts.message import MessageFactory, OutboxItem
from alerts.store.subscribers import insert_subscriber
from alerts.subscribers import make_subscription
from alerts.types import AdvisoryInput, AreaKind, Frequency, SubscriberStatus

# The seeding helpers live with the tests (tests/support), which are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.tables import outbox_rows

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


def write_config(
    folder: Path,
    database: Path,
    port: int,
    connections: int,
    per_connection: int = 100,
    *,
    dkim: dict[str, str] | None = None,
    name: str = "config.yaml",
) -> Path:
    path = folder / name
    config: dict[str, object] = {
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
    if dkim:
        config["delivery"]["dkim"] = dkim  # type: ignore[index]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def queue(config: Path, count: int) -> tuple[int, float]:
    """Advisories, subscribers, and the real digest queueing. Returns (messages, seconds)."""
    app = App(config)
    now = datetime.now(UTC)
    districts = sorted(s for s, n in app.gazetteer.nodes.items() if n.kind == AreaKind.DISTRICT)
    for area in districts:
        url = f"https://www.kent.police.uk/news/benchmark/{area}/"
        body = (
            "<p>Residents are warned about a telephone fraudster posing as a police officer. " * 12
            + "</p>"
        )
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
                app.gazetteer,
                f"reader{i}@example.org",
                [districts[i % len(districts)]],
                frequency="immediate",
            )
            insert_subscriber(
                conn, subscription, status=SubscriberStatus.ACTIVE, now=now - timedelta(days=1)
            )
    started = time.perf_counter()
    report = queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.IMMEDIATE, now=now
    )
    seconds = time.perf_counter() - started
    app.close()
    return report.messages, seconds


def prebuilt(config: Path) -> list[tuple[str, bytes]]:
    """The floor's messages: the pipeline's own, built before the clock starts."""
    app = App(config)
    factory = MessageFactory(app.config.mail, app.store, app.now)
    messages = [
        (
            r["email"],
            factory.build(
                OutboxItem(r["id"], r["subscriber_id"], r["digest_id"], r["message_id"], r["email"])
            ),
        )
        for r in outbox_rows(app.store.engine)
    ]
    app.close()
    return messages


#: CPU seconds (this process, every thread) of each pipeline run, by config file name.
CPU: dict[str, list[float]] = {}


def run_pipeline(
    config: Path, queued: Path, database: Path, connections: int, *, mark_each: bool = True
) -> tuple[float, int]:
    shutil.copy(queued, database)
    app = App(config)
    app.store  # connect and migrate before the clock starts  # noqa: B018
    # The batched marks are no option of the config: they are only measured here.
    delivery.Dispatcher = functools.partial(Dispatcher, mark_each=mark_each)  # type: ignore[misc,assignment]
    started, cpu = time.perf_counter(), time.process_time()
    report = send_pending(
        app.config.delivery, app.config.mail, app.store, app.clock, workers=connections
    )
    seconds = time.perf_counter() - started
    CPU.setdefault(config.name if mark_each else "batched", []).append(
        (time.process_time() - cpu) / max(report.sent, 1)
    )
    app.close()
    if report.sent == 0 or report.deferred or report.failed:
        raise SystemExit(f"pipeline run went wrong: {report.as_dict()}")
    return seconds, report.sent


def dkim_keys(folder: Path, ed: bool) -> dict[str, str]:
    """A 2048-bit RSA key (and an Ed25519 one) for signing, as the config names them."""

    def write(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, name: str) -> str:
        path = folder / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(path)

    settings = {
        "domain": "example.org",
        "selector": "bench",
        "key_file": write(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), "dkim.pem"
        ),
    }
    if ed:
        settings.update(
            ed25519_selector="bench-ed",
            ed25519_key_file=write(ed25519.Ed25519PrivateKey.generate(), "ed.pem"),
        )
    return settings


def run_floor(
    port: int, messages: list[tuple[str, bytes]], connections: int, per_connection: int
) -> float:
    def work(share: list[tuple[str, bytes]]) -> None:
        for start in range(0, len(share), per_connection):
            smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=30)
            for recipient, data in share[start : start + per_connection]:
                smtp.sendmail("alerts@example.org", [recipient], data)
            smtp.quit()

    threads = [
        threading.Thread(target=work, args=(messages[i::connections],)) for i in range(connections)
    ]
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
    parser.add_argument(
        "--durability",
        action="store_true",
        help="also time a run that marks sent messages in batches",
    )
    parser.add_argument(
        "--dkim", action="store_true", help="also time a DKIM-signed run (RSA-2048) in each round"
    )
    parser.add_argument(
        "--ed25519", action="store_true", help="with --dkim: add an Ed25519 signature (RFC 8463)"
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
        print(
            f"queued {messages} messages for {args.subscribers} subscribers over 13 districts "
            f"in {queue_seconds:.1f} s (queue_digests); median message {size / 1024:.1f} KiB"
        )
        run_config = write_config(
            folder, database, sink.port, args.connections, args.per_connection
        )
        signed_config = (
            write_config(
                folder,
                database,
                sink.port,
                args.connections,
                args.per_connection,
                dkim=dkim_keys(folder, args.ed25519),
                name="signed.yaml",
            )
            if args.dkim
            else None
        )

        pipeline_rates, floor_rates, signed_rates, signed_ratios = [], [], [], []
        batched_rates, batched_ratios = [], []
        for run in range(1, args.runs + 1):
            before = sink.count()
            seconds = run_floor(sink.port, floor_messages, args.connections, args.per_connection)
            assert sink.count() - before == len(floor_messages), "the floor lost messages"
            floor_rates.append(len(floor_messages) / seconds)
            before = sink.count()
            unsigned_seconds, sent = run_pipeline(run_config, queued, database, args.connections)
            assert sink.count() - before == sent == messages, "the pipeline lost messages"
            pipeline_rates.append(sent / unsigned_seconds)
            line = f"run {run}: floor {floor_rates[-1]:7.0f} msg/s   pipeline {pipeline_rates[-1]:7.0f} msg/s"
            if args.durability:
                before = sink.count()
                seconds, sent = run_pipeline(
                    run_config, queued, database, args.connections, mark_each=False
                )
                assert sink.count() - before == sent == messages, (
                    "the batched pipeline lost messages"
                )
                batched_rates.append(sent / seconds)
                batched_ratios.append(unsigned_seconds / seconds)
                line += f"   batched marks {batched_rates[-1]:7.0f} msg/s"
            if signed_config is not None:
                before = sink.count()
                seconds, sent = run_pipeline(signed_config, queued, database, args.connections)
                assert sink.count() - before == sent == messages, (
                    "the signed pipeline lost messages"
                )
                signed_rates.append(sent / seconds)
                signed_ratios.append(seconds / unsigned_seconds)
                line += f"   signed {signed_rates[-1]:7.0f} msg/s ({signed_ratios[-1]:.2f}x the unsigned time)"
            print(line)
    sink.close()

    floor, pipeline = statistics.median(floor_rates), statistics.median(pipeline_rates)
    print(
        f"{args.connections} connections at a time, {args.per_connection} messages per connection; "
        f"sink {'on a core of its own' if pin else 'sharing the cores'}; medians of {args.runs} runs"
    )
    print(f"floor (plain smtplib, pre-built):           {floor:7.0f} msg/s")
    print(f"pipeline (send_pending: claim, build, send, mark): {pipeline:7.0f} msg/s")
    print(f"ratio floor/pipeline: {floor / pipeline:.2f}x (aim: at most 1.25x)")
    if batched_rates:
        print(
            f"pipeline with sent marks batched (50 rows / 0.2 s): {statistics.median(batched_rates):7.0f} msg/s"
        )
        print(
            f"ratio each-at-once/batched time: {statistics.median(batched_ratios):.2f}x, median of the rounds "
            f"(what one commit per accepted message costs)"
        )
        each_cpu, batched_cpu = (
            statistics.median(CPU["config.yaml"]),
            statistics.median(CPU["batched"]),
        )
        print(
            f"CPU per message: marks each at once {each_cpu * 1000:.2f} ms, batched {batched_cpu * 1000:.2f} ms"
        )
    if signed_rates:
        kind = "RSA-2048 + Ed25519" if args.ed25519 else "RSA-2048"
        print(
            f"signed pipeline (DKIM {kind}, OpenSSL):    {statistics.median(signed_rates):7.0f} msg/s"
        )
        print(
            f"ratio signed/unsigned time: {statistics.median(signed_ratios):.2f}x, median of the rounds "
            f"(each round against its own unsigned run; aim: at most 1.3x)"
        )
        unsigned_cpu, signed_cpu = (
            statistics.median(CPU["config.yaml"]),
            statistics.median(CPU["signed.yaml"]),
        )
        print(
            f"CPU per message (this process, all threads; steadier than wall time on a busy machine): "
            f"unsigned {unsigned_cpu * 1000:.2f} ms, signed {signed_cpu * 1000:.2f} ms "
            f"(+{(signed_cpu - unsigned_cpu) * 1000:.2f} ms to sign)"
        )


if __name__ == "__main__":
    main()
