"""Subscriber figures: streaming N subscribers (time, peak Python memory), link tokens
per second, and importing a CSV list. Prints figures; not a test.

    .venv/bin/python benchmarks/subscribers.py [--count 100000] [--database URL]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from alerts.areas import load_gazetteer
from alerts.clock import SYSTEM
from alerts.config import parse_config
from alerts.store import Store, open_store
from alerts.subscribers.lists import import_list
from alerts.tokens import LinkSigner
from alerts.types import Frequency

# The seeding helpers live with the tests (tests/support), which are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.tables import insert_rows

AREAS = ["medway", "chatham", "dover", "canterbury", "maidstone", "ashford", "thanet", "kent",
         "swale", "dartford", "gravesham", "sevenoaks", "tunbridge-wells"]  # fmt: skip


def fill(store: Store, count: int) -> None:
    now = datetime.now(UTC)
    rng = random.Random(1)
    for start in range(0, count, 5000):
        ids = range(start + 1, min(start + 5000, count) + 1)
        insert_rows(store.engine, "subscribers", [
            {"id": i, "email": f"s{i}@example.org", "frequency": rng.choice(list(Frequency)).value,
             "status": "active", "forwardable": False, "urgent": True, "bounces": 0,
             "created_at": now, "confirmed_at": now, "watermark": now} for i in ids
        ])  # fmt: skip
        insert_rows(
            store.engine,
            "subscriber_areas",
            [{"subscriber_id": i, "area": rng.choice(AREAS)} for i in ids],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--database", help="default: a fresh SQLite file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    store = open_store(args.database or f"sqlite:///{folder / 'bench.db'}")
    fill(store, args.count)

    for frequency in (None, Frequency.DAILY):
        label = frequency.value if frequency else "all"
        started = time.perf_counter()
        seen = sum(1 for _ in store.subscribers.iterate(frequency=frequency))
        elapsed = time.perf_counter() - started
        tracemalloc.start()  # a second pass: tracing slows Python down several times
        sum(1 for _ in store.subscribers.iterate(frequency=frequency))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"iter_subscribers({label}): {seen} in {elapsed:.2f}s = {seen / elapsed:,.0f}/s, peak {peak / 1e6:.1f} MB"
        )

    config = parse_config({"security": {"secret_key_file": str(folder / "key")}}, root=folder)
    signer = LinkSigner(config.site.base_url, config.security)
    issued = SYSTEM.now()
    started = time.perf_counter()
    for n in range(1, 20_001):
        signer.links(n, issued)
    elapsed = time.perf_counter() - started
    print(
        f"LinkSigner.links: {20_000 / elapsed:,.0f}/s ({elapsed / 20_000 * 1e6:.1f} µs each, 3 links)"
    )

    rows = 5_000
    path = folder / "list.csv"
    path.write_text("email,areas,frequency\n" + "".join(
        f"import{n}@example.org,{AREAS[n % len(AREAS)]},daily\n" for n in range(rows)
    ))  # fmt: skip
    started = time.perf_counter()
    report = import_list(store, load_gazetteer("kent"), path, now=datetime.now(UTC))
    first = time.perf_counter() - started
    started = time.perf_counter()
    import_list(store, load_gazetteer("kent"), path, now=datetime.now(UTC))
    again = time.perf_counter() - started
    print(
        f"import {rows} CSV rows: {first:.1f}s ({report.added} added); again (all unchanged): {again:.1f}s"
    )
    store.close()


if __name__ == "__main__":
    main()
