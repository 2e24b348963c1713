"""Form timing: does the subscribe form's answer, or the next request on the same
kept-alive connection, take longer when the address is known? (Issue 19 part 6.)

    .venv/bin/python benchmarks/form_timing.py [--rounds 200] [--known 200]

Set-up (not timed): the web app under uvicorn on loopback (its lifespan starts the
forms' worker), a fresh SQLite database with ``--known`` active subscribers, the
Maildir backend (nothing is sent: the work is the look-up, the limits, rendering and
queueing the mail). The app's clock is a manual one moved on two minutes per request,
so the per-client limit (30 an hour) never answers 429.

Timed, per round, on ONE kept-alive HTTP/1.1 connection: a subscribe POST for a known
address or for a new one (alternating, in a shuffled order), to its full answer; then a
GET of /privacy on the same connection, to its full answer. Prints the median and the
90th percentile (milliseconds) of each, for known and unknown addresses: first with the
work on the forms' worker (as ``alerts web`` runs), then with it as a background task
of the response (the earlier way, for comparison). The load average is printed: the
machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import yaml

from alerts.app import App
from alerts.clock import ManualClock
from alerts.subscribers import make_subscription
from alerts.web import create_app
from alerts.web.testing import bind_loopback, serve_in_thread, socket_url

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--known", type=int, default=200)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        for worker in (True, False):
            figures = measure(Path(folder) / ("worker" if worker else "background"), args, worker)
            label = "forms' worker" if worker else "background task (before)"
            for (kind, known), times in sorted(figures.items()):
                who = "known" if known else "unknown"
                print(
                    f"{label:<26} {kind:<16} {who:<8} median {statistics.median(times):7.2f} ms"
                    f"  p90 {quantile(times, 0.9):7.2f} ms  (n={len(times)})"
                )
    print(f"load average at end: {os.getloadavg()}")


def measure(
    folder: Path, args: argparse.Namespace, worker: bool
) -> dict[tuple[str, bool], list[float]]:
    folder.mkdir()
    sock = bind_loopback()
    url = socket_url(sock)
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{folder / 'alerts.db'}",
                "site": {"base_url": url},
                "templates": str(REPO / "templates"),
                "feeds": {"out": str(folder / "feeds")},
                "sources": [{"path": str(folder / "advisories")}],
                "delivery": {"backend": "maildir", "maildir": str(folder / "maildir")},
                "security": {"secret_key_file": str(folder / "secret.key")},
            }
        ),
        encoding="utf-8",
    )
    (folder / "advisories").mkdir()
    clock = ManualClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    app = App(config, clock=clock)
    known = [f"known.{n}@example.org" for n in range(args.known)]
    for address in known:
        app.store.subscribers.add(
            make_subscription(app.gazetteer, address, ["medway"], frequency="daily"),
            now=clock.now(),
        )
    web = create_app(app)
    order = [n % 2 == 0 for n in range(args.rounds)]
    random.Random(19).shuffle(order)
    figures: dict[tuple[str, bool], list[float]] = {}
    parts = urlsplit(url)
    try:
        with serve_in_thread(web, sock):
            if not worker:
                web.state.form_work.stop()  # no worker: the work runs as a background task
            connection = HTTPConnection(parts.hostname or "", parts.port, timeout=30)
            for n, is_known in enumerate(order):
                clock.advance(timedelta(minutes=2))
                address = known[n % len(known)] if is_known else f"new.{n}@example.org"
                body = urlencode({"email": address, "area": "medway", "frequency": "daily"})
                started = time.perf_counter()
                connection.request(
                    "POST", "/subscribe", body=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )  # fmt: skip
                response = connection.getresponse()
                response.read()
                answered = time.perf_counter()
                assert response.status == 200, response.status
                connection.request("GET", "/privacy")
                following = connection.getresponse()
                following.read()
                finished = time.perf_counter()
                figures.setdefault(("subscribe answer", is_known), []).append(
                    (answered - started) * 1000
                )
                figures.setdefault(("next request", is_known), []).append(
                    (finished - answered) * 1000
                )
            connection.close()
    finally:
        app.close()
    return figures


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    main()
