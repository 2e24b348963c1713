"""Digest rendering and personalisation at scale. Prints figures; not a test.

    .venv/bin/python benchmarks/render.py                 # 10,000 and 100,000 subscribers
    .venv/bin/python benchmarks/render.py --sizes 20000 --runs 3

For each size, in a fresh process and a fresh SQLite database in a temporary folder:
subscribers spread over the 13 districts of Kent (one in ten with a second district,
one in fifty a coordinator's forwardable copy) and the three frequencies; two new
advisories per district and two force-wide ones. It then times planning and queueing
(``queue_digests`` for daily, weekly and immediate), counts the documents premailer
inlines (``premailer_calls``; a batch's go in one pass), times
``MessageFactory.build`` over queued messages (CPU time, median of several runs; the
cost split into signing the personal links and composing the bytes), and reports
peak memory: the process's peak RSS and the peak of Python allocations (tracemalloc)
while queueing, which should stay flat as the subscriber count grows.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts.app import App  # noqa: E402
from alerts.digest import queue_digests, render  # noqa: E402
from alerts.ingest import store_advisory  # noqa: E402
from alerts.message import MessageFactory, OutboxItem  # noqa: E402
from alerts.types import AdvisoryInput, AreaKind, Frequency, Priority  # noqa: E402
from tests.support.tables import insert_rows, outbox_rows  # noqa: E402

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
FREQUENCIES = ("daily", "weekly", "immediate")


def setup(folder: Path, count: int) -> App:
    config = {
        "database": f"sqlite:///{folder / 'alerts.db'}",
        "templates": str(REPO / "templates"),
        "security": {"secret_key_file": str(folder / "secret.key")},
        "email": {
            "from": "Kent Area Alerts <alerts@alerts.example.org>",
            "domain": "alerts.example.org",
            "unsubscribe_mailbox": "unsubscribe@alerts.example.org",
        },
        "site": {"name": "Kent Area Alerts", "base_url": "https://alerts.example.org"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    app = App(folder / "config.yaml")
    districts = [node.slug for node in app.gazetteer if node.kind is AreaKind.DISTRICT]
    joined = NOW - timedelta(days=30)
    for start in range(0, count, 5000):
        people, areas = [], []
        for i in range(start, min(count, start + 5000)):
            people.append(
                {
                    "id": i + 1,
                    "email": f"reader{i}@example.org",
                    "name": f"Reader {i}",
                    "frequency": FREQUENCIES[i % 3],
                    "status": "active",
                    "forwardable": i % 50 == 0,
                    "urgent": True,
                    "bounces": 0,
                    "created_at": joined,
                    "confirmed_at": joined,
                    "watermark": joined,
                }
            )
            home = districts[i % 13]
            areas.append({"subscriber_id": i + 1, "area": home})
            if i % 10 == 0:
                areas.append({"subscriber_id": i + 1, "area": districts[(i // 13 + 1) % 13]})
        insert_rows(app.store.engine, "subscribers", people)
        insert_rows(
            app.store.engine,
            "subscriber_areas",
            [dict(a) for a in {tuple(a.items()): a for a in areas}.values()],
        )
    body = (REPO / "advisories").glob("*.md").__next__().read_text(encoding="utf-8")
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("```", 2)[-1].split("\n\n") if p.strip())
    for n, slug in enumerate([*districts, *districts, "kent", "kent"]):
        store_advisory(
            AdvisoryInput(
                key=f"https://www.kent.police.uk/news/bench-{n}/",
                url=f"https://www.kent.police.uk/news/bench-{n}/",
                title=f"Telephone fraudster poses as police officer ({n})",
                summary="Fraud investigators are reminding residents of safety advice following a report.",
                body_html=paragraphs,
                body_text=body,
                published_at=NOW - timedelta(hours=3, minutes=n),
                source="bench",
                areas=frozenset({slug}),
                force_area="kent",
                priority=Priority.URGENT if n == 0 else Priority.NORMAL,
            ),
            app.store,
            app.gazetteer,
            NOW - timedelta(hours=2),
        )
    return app


def measure(count: int, runs: int, sample: int, trace: bool) -> dict[str, Any]:
    calls = [0]
    real = render.inline_css_all

    def counting(documents: Sequence[str]) -> list[str]:
        calls[0] += len(documents)
        return real(documents)

    render.inline_css_all = counting
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        app = setup(Path(folder), count)
        setup_seconds = time.perf_counter() - started
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if trace:
            tracemalloc.start()
        started, cpu = time.perf_counter(), time.process_time()
        reports = [
            queue_digests(
                app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency(f), now=NOW
            ).as_dict()
            for f in ("immediate", "daily", "weekly")
        ]
        queue_seconds, queue_cpu = time.perf_counter() - started, time.process_time() - cpu
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        items = [
            OutboxItem(
                r["id"], r["subscriber_id"], r["digest_id"], r["message_id"], r["email"], r["name"]
            )
            for r in outbox_rows(app.store.engine)[:sample]
        ]
        factory = MessageFactory(app.config.mail, app.store, app.now)
        sizes = [len(factory.build(item)) for item in items]  # warm: every digest prepared once
        rates = []
        for _ in range(runs):
            started = time.process_time()
            for item in items:
                factory.build(item)
            rates.append(len(items) / (time.process_time() - started))
        # The same, split: signing the personal links (alerts.tokens) and the rest.
        when = app.local(NOW)
        links = [factory.signer.links(item.subscriber_id, when) for item in items]
        prepared = [factory.prepared(item.digest_id) for item in items]
        compose, sign = [], []
        for _ in range(runs):
            started = time.process_time()
            for item, ready, link in zip(items, prepared, links, strict=True):
                ready.compose(item, link, when)
            compose.append((time.process_time() - started) / max(1, len(items)))
            started = time.process_time()
            for item in items:
                factory.signer.links(item.subscriber_id, when)
            sign.append((time.process_time() - started) / max(1, len(items)))
        app.close()
    return {
        "subscribers": count,
        "setup_s": round(setup_seconds, 1),
        "queue_s": round(queue_seconds, 2),
        "queue_cpu_s": round(queue_cpu, 2),
        "messages": sum(r["messages"] for r in reports),
        "variants": sum(r["digests"] for r in reports),
        "premailer_calls": calls[0],
        "build_per_s_median": round(statistics.median(rates)),
        "build_us_median": round(1e6 / statistics.median(rates), 1),
        "compose_us_median": round(1e6 * statistics.median(compose), 1),
        "sign_links_us_median": round(1e6 * statistics.median(sign), 1),
        "built_sample": len(items),
        "mean_message_kb": round(statistics.mean(sizes) / 1000, 1) if sizes else 0,
        "peak_rss_mb_before_queue": round(rss_before / 1024, 1),
        "peak_rss_mb_after_queue": round(rss_after / 1024, 1),
        "traced_peak_mb_queue": round(traced_peak / 1e6, 1) if traced_peak is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,100000", help="subscriber counts, comma-separated"
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="message-building runs (the median is reported)"
    )
    parser.add_argument("--sample", type=int, default=20000, help="messages built per run")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.runs, args.sample, args.trace)))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        # Each size in its own process, so peak RSS is that size's own; timings without
        # tracemalloc (it slows Python down), then the allocation peak in another run.
        timed = _child(size, args, trace=False)
        traced = _child(size, args, trace=True)
        timed["traced_peak_mb_queue"] = traced["traced_peak_mb_queue"]
        results.append(timed)
        print(json.dumps(timed), flush=True)
    print()
    header = (
        "subscribers",
        "queue_s",
        "queue_cpu_s",
        "messages",
        "variants",
        "premailer_calls",
        "build_per_s_median",
        "build_us_median",
        "compose_us_median",
        "sign_links_us_median",
        "mean_message_kb",
        "peak_rss_mb_after_queue",
        "traced_peak_mb_queue",
    )
    print(" | ".join(header))
    for row in results:
        print(" | ".join(str(row[key]) for key in header))


def _child(size: int, args: argparse.Namespace, *, trace: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--one",
        str(size),
        "--runs",
        str(args.runs),
        "--sample",
        str(args.sample),
    ]
    if trace:
        command += ["--trace", "--runs", "1", "--sample", "100"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
