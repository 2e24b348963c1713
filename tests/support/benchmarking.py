"""What the benchmarks share: an urgent advisory file, a PostgreSQL schema of their own, and
the relay's acceptance times."""

from __future__ import annotations

import contextlib
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

    def wait(self, count: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.times) >= count, timeout)
