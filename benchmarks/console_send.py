"""Console send: an editor presses Send on an urgent advisory in the console -> the
answer, and the first and last of its messages accepted by an SMTP relay on loopback,
with ``alerts web`` alone running (no ``alerts serve``: the web process sends what the
console queued), for N subscribers in Chatham (immediate, daily and weekly, all wanting
urgent alerts, so every one is mailed at once).

    .venv/bin/python benchmarks/console_send.py [--sizes 1,1000] [--runs 3]

Set-up (not timed): a fresh SQLite database, N subscribers, an editor account, the
relay (aiosmtpd, in this process), ``alerts web`` started and signed in to. Timed, per
run: from the POST of the compose form's Send to its answer (the request queues but
does not send), to the first acceptance at the relay and to the last. Prints, per
size, the median over the runs. The load average is printed at start and end: the
machine may be shared. The issue's bar: at the relay within 10 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import yaml

from alerts.app import App
from alerts.store.users import Role
from alerts.testing import SmtpSink
from alerts.web.admin.passwords import hash_password

# The seeding helpers live with the tests (tests/support), which are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.benchmarking import Arrivals
from tests.support.processes import AlertsProcess, free_port
from tests.support.seeding import seed_subscribers

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def hidden(html: str) -> dict[str, str]:
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }


def measure(size: int, runs: int) -> list[tuple[float, float, float]]:
    """(answer, first, last) seconds after the POST, per run."""
    results = []
    with tempfile.TemporaryDirectory(prefix="alerts-console-") as tmp:
        root = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        arrivals = Arrivals()
        with SmtpSink(keep=False, on_accept=arrivals) as sink:
            config = root / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "database": f"sqlite:///{root / 'alerts.db'}",
                        "templates": str(REPO / "templates"),
                        "feeds": {"out": str(root / "feeds")},
                        "site": {"base_url": url},
                        "delivery": {
                            "backend": "smtp",
                            "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
                        },
                        "email": {
                            "from": "Kent Area Alerts <alerts@example.org>",
                            "domain": "example.org",
                        },
                        "digests": {"urgent_per_hour": 1000},
                        "security": {"secret_key_file": str(root / "secret.key")},
                    }
                ),
                encoding="utf-8",
            )
            app = App(config)
            now = datetime.now(UTC)
            app.store.users.add("jo", Role.EDITOR, hash_password(PASSWORD), now)
            seed_subscribers(
                app.store, count=size, now=now - timedelta(hours=1), areas=("chatham",)
            )
            app.close()
            web = AlertsProcess(config, "web", "--port", str(port), cwd=str(REPO))
            try:
                web.wait_for("serving ", timeout=120)
                with httpx.Client(base_url=url, timeout=120) as client:
                    for _ in range(100):  # uvicorn says 'serving' just before it listens
                        try:
                            login = client.get("/admin/login")
                            break
                        except httpx.ConnectError:
                            time.sleep(0.05)
                    form = {**hidden(login.text), "username": "jo", "password": PASSWORD}
                    client.post("/admin/login", data=form)
                    for number in range(runs):
                        page = client.get("/admin/compose")
                        form = {
                            **hidden(page.text),
                            "title": f"Dangerous dog loose in Chatham ({number})",
                            "areas": "Chatham",
                            "priority": "urgent",
                            "body": "Residents of Chatham: keep children and pets indoors.",
                            "action": "send",
                        }
                        done = len(arrivals.times)
                        posted = time.time()
                        answer = client.post("/admin/compose", data=form)
                        answered = time.time() - posted
                        if answer.status_code != 303:
                            raise SystemExit(f"the console refused the send: {answer.status_code}")
                        if not arrivals.wait(done + size, timeout=600):
                            raise SystemExit("not every message reached the relay within 600 s")
                        results.append(
                            (
                                answered,
                                arrivals.times[done] - posted,
                                arrivals.times[done + size - 1] - posted,
                            )
                        )
            finally:
                web.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,1000", help="subscriber counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for size in (int(s) for s in args.sizes.split(",")):
        results = measure(size, args.runs)
        answer, first, last = (statistics.median(r[i] for r in results) for i in range(3))
        print(
            f"alerts web alone, {size} subscribers, median of {len(results)}: answer {answer:.2f} s,"
            f" first at the relay {first:.2f} s, last {last:.2f} s"
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
