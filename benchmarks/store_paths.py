"""Store paths without SMTP: process CPU seconds per 1,000 messages of queueing an urgent
alert to N subscribers (``queue_digests``), claiming every row 50 at a time
(``store.outbox.claim``) and marking each sent (``SentMarks.mark``), in one thread, so
the figures do not depend on how many other threads wanted the GIL or the cores (the
machine may be shared; ``benchmarks/latency.py`` measures the whole path).

    .venv/bin/python benchmarks/store_paths.py [--size 10000] [--runs 3] [--database URL]

Set-up (not timed): a fresh SQLite database, or the PostgreSQL URL given in a schema of
its own, and N subscribers in Medway. Per run: a new urgent advisory is ingested, then
queued, claimed and marked. Prints the median over the runs, and the queueing run's wall
time (which includes the database's own work).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from alerts.app import App
from alerts.digest import queue_digests
from alerts.ingest import ingest_sources
from alerts.types import Frequency

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support import REPO
from tests.support.benchmarking import advisory, postgres_schema
from tests.support.seeding import seed_subscribers


def measure(size: int, runs: int, database: str | None, root: Path) -> dict[str, float]:
    folder = root / "advisories"
    folder.mkdir()
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": database or f"sqlite:///{root / 'alerts.db'}",
                "templates": str(REPO / "templates"),
                "sources": [{"path": str(folder), "settle_seconds": 0}],
                "feeds": {"out": str(root / "feeds")},
                "delivery": {"backend": "maildir", "maildir": str(root / "maildir")},
                "email": {"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
                "security": {"secret_key_file": str(root / "secret.key")},
            }
        ),
        encoding="utf-8",
    )
    app = App(config)
    seed_subscribers(app.store, count=size, now=datetime.now(UTC) - timedelta(minutes=5))
    found: dict[str, list[float]] = {"queue": [], "queue_wall": [], "claim": [], "mark": []}
    try:
        for run in range(runs):
            (folder / f"urgent-{run}.md").write_text(advisory(run), encoding="utf-8")
            settings = app.config
            ingest_sources(
                settings.sources,
                app.store,
                app.gazetteer,
                now=app.now(),
                clock=app.clock,
                zone=settings.tz,
                site=settings.site,
                digests=settings.digests,
            )
            wall, cpu = time.perf_counter(), time.process_time()
            report = queue_digests(
                settings.mail,
                settings.digests,
                app.store,
                app.gazetteer,
                Frequency.IMMEDIATE,
                now=app.now(),
            )
            found["queue"].append((time.process_time() - cpu) * 1000 / report.messages)
            found["queue_wall"].append(time.perf_counter() - wall)
            claim, mark, count = claim_and_mark(app)
            found["claim"].append(claim * 1000 / count)
            found["mark"].append(mark * 1000 / count)
            print(
                f"  run {run + 1}: queue {found['queue'][-1]:.3f} ({found['queue_wall'][-1]:.2f} s wall),"
                f" claim {found['claim'][-1]:.3f}, mark {found['mark'][-1]:.3f} CPU s/1k",
                file=sys.stderr,
            )
    finally:
        app.close()
    return {key: statistics.median(values) for key, values in found.items()}


def claim_and_mark(app: App) -> tuple[float, float, int]:
    """CPU seconds claiming and marking every queued row, and how many."""
    marks = app.store.outbox.sent_marks(time.monotonic)
    claiming = marking = 0.0
    count = 0
    try:
        while True:
            cpu = time.process_time()
            batch, _ = app.store.outbox.claim(
                "bench-worker", 50, app.now(), lease=timedelta(minutes=5)
            )
            claiming += time.process_time() - cpu
            if not batch:
                return claiming, marking, count
            cpu = time.process_time()
            for claimed in batch:
                marks.mark(claimed.item.outbox_id, app.now(), claimed.arrived_at)
            marking += time.process_time() - cpu
            count += len(batch)
    finally:
        marks.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=10000, help="subscribers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database", help="a PostgreSQL URL (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alerts-store-paths-") as tmp:
        if args.database:
            with postgres_schema(args.database) as url:
                result: dict[str, Any] = measure(args.size, args.runs, url, Path(tmp))
        else:
            result = measure(args.size, args.runs, None, Path(tmp))
    backend = "postgresql" if args.database else "sqlite"
    print(f"store paths, {backend}, {args.size:,} subscribers, median of {args.runs} runs")
    print(
        f"CPU s per 1,000 messages: queue {result['queue']:.3f} (wall {result['queue_wall']:.2f} s),"
        f" claim {result['claim']:.3f}, mark {result['mark']:.3f}"
    )


if __name__ == "__main__":
    main()
