"""How long does polling a folder of advisories take when nothing changed?

    .venv/bin/python benchmarks/poll.py [--files 10000] [--polls 7] [--database URL]

Writes N advisory files into a temporary folder, polls it once (every file read), then
polls it again several times with nothing changed and prints the median. A database URL
(postgresql://...) measures against PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.areas import load_gazetteer
from alerts.ingest.dates import LONDON
from alerts.ingest.directory import ingest_directories
from alerts.store import open_store

TOWNS = ["Chatham", "Dover", "Maidstone", "Ashford", "Margate", "Canterbury", "Sevenoaks", "Deal"]


def write_files(folder: Path, count: int) -> None:
    hour_ago = time.time_ns() - 3600 * 10**9  # files at rest, not being written now
    for n in range(count):
        town = TOWNS[n % len(TOWNS)]
        sub = folder / f"{2000 + n % 26}"
        sub.mkdir(exist_ok=True)
        path = sub / f"advisory-{n:05d}.md"
        path.write_text(
            "```yaml\n"
            f"title: Appeal number {n} after incident in {town} | Kent Police\n"
            f"url: https://www.kent.police.uk/news/kent/appeal-{n}/\n"
            "publish:\n"
            f"  date: 14:30 {1 + n % 28:02d}/{1 + n % 12:02d}/2025\n"
            "```\n\n"
            f"Officers in {town} are appealing for witnesses. Call 101 quoting {n}.\n",
            encoding="utf-8",
        )
        os.utime(path, ns=(hour_ago, hour_ago))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=7)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    gazetteer = load_gazetteer("kent")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "advisories"
        folder.mkdir()
        write_files(folder, args.files)
        store = open_store(args.database or f"sqlite:///{tmp}/alerts.db")
        now = datetime.now(UTC)

        def poll() -> tuple[float, dict[str, int]]:
            start = time.perf_counter()
            report = ingest_directories([folder], store, gazetteer, now=now, zone=LONDON)
            return time.perf_counter() - start, report.counts()

        first, counts = poll()
        print(f"first poll, {args.files:,} files read and stored: {first:.2f} s  {counts}")
        timings = []
        for _ in range(args.polls):
            seconds, counts = poll()
            assert counts["unchanged"] == args.files and counts["new"] == counts["updated"] == 0, (
                counts
            )
            timings.append(seconds)
        print(
            f"poll with nothing changed, {args.files:,} files: median {statistics.median(timings) * 1000:.0f} ms "
            f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}, {args.polls} polls)"
        )
        store.close()


if __name__ == "__main__":
    main()
