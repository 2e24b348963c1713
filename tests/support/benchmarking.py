"""What the benchmarks share: an urgent advisory file, a PostgreSQL schema of their own, the
relay's acceptance times, and a relay written in C (Postfix's smtp-sink) for when the
aiosmtpd sink, which costs about a core at 700 messages a second, would be the limit."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import yaml
from sqlalchemy.engine import make_url

from alerts.testing import Received


def advisory(number: int) -> str:
    """An urgent advisory file for Medway, new each call (its own URL)."""
    stamp = datetime.now(UTC).astimezone().strftime("%H:%M %d/%m/%Y")
    meta = {
        "title": f"Urgent: dangerous dog loose in Chatham ({number})",
        "url": f"https://www.kent.police.uk/news/latency-{uuid.uuid4().hex}/",
        "area": "Medway",
        "priority": "urgent",
        "publish": {"date": stamp},
    }
    return (
        "```yaml\n" + yaml.safe_dump(meta) + "```\n\nResidents of Chatham: keep children indoors.\n"
    )


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server, selected through the URL's search_path; dropped after."""
    schema = f"latency_{uuid.uuid4().hex[:8]}"
    server = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(False)
        )
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


class Arrivals:
    """Acceptance times at the relay, by the wall clock (as a file's appearance is timed):
    give it to ``SmtpSink(on_message=...)``."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Condition()

    def __call__(self, _received: Received) -> None:
        with self.lock:
            self.times.append(time.time())
            self.lock.notify_all()

    def counted(self, total: int, at: float) -> None:
        """The relay says ``total`` messages so far, at ``at``: the new ones arrived then."""
        with self.lock:
            self.times.extend([at] * (total - len(self.times)))
            self.lock.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.times) >= count, timeout)


class CSink:
    """Postfix's smtp-sink (``/usr/sbin/smtp-sink``, from Debian's postfix package) on a
    loopback port: it accepts and discards mail, in C, and prints a running count of
    messages ("mesg=N") at each end of data, which a thread here turns into acceptance
    times for ``arrivals``. It stands in for a relay that is not the bottleneck."""

    PROGRAM = "smtp-sink"

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.host = "127.0.0.1"
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        program = self.installed()
        if program is None:
            raise SystemExit(
                "smtp-sink not found: install Debian's postfix package"
                " (scripts/install-system-packages postfix), or use --relay aiosmtpd"
            )
        # As root it must be told whom to run as; -c: running counters; 1024: listen backlog.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [program, "-c", *user, f"{self.host}:{self.port}", "1024"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, name="smtp-sink-counts", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(
                        f"smtp-sink did not start on {self.host}:{self.port}"
                    ) from None
                time.sleep(0.05)

    @classmethod
    def installed(cls) -> str | None:
        """The program's path, if it is installed."""
        return shutil.which(cls.PROGRAM) or shutil.which(cls.PROGRAM, path="/usr/sbin")

    def _read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        while chunk := os.read(self.process.stdout.fileno(), 65536):
            at = time.time()
            pending += chunk
            counts = re.findall(rb"mesg=(\d+)", pending)
            pending = pending[-64:]
            if counts:
                self.arrivals.counted(int(counts[-1]), at)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def __enter__(self) -> CSink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
