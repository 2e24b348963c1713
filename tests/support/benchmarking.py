"""What the benchmarks share: an urgent advisory file, and a PostgreSQL schema of their own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import yaml
from sqlalchemy.engine import make_url


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
