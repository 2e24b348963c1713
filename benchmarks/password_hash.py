"""How long does one console sign-in's password check take, with the parameters in
alerts.web.admin.passwords?

    .venv/bin/python benchmarks/password_hash.py [--rounds 10]

Prints the parameters and the median and worst time of one Argon2id verification.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.web.admin.passwords import HASHER, MEMORY_KIB, PARALLELISM, TIME_COST, WORKERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    stored = HASHER.hash("correct horse battery staple")
    times = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        HASHER.verify(stored, "correct horse battery staple")
        times.append(time.perf_counter() - started)
    print(
        f"argon2id time_cost={TIME_COST} memory={MEMORY_KIB // 1024} MiB parallelism={PARALLELISM} pool={WORKERS}"
    )
    print(
        f"verify: median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms over {args.rounds}"
    )


if __name__ == "__main__":
    main()
