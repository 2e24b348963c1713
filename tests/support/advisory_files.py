"""Write advisory files for tests, in the real format, so they go through real ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_advisory(
    folder: Path,
    name: str,
    *,
    title: str,
    url: str,
    date: str = "10:00 01/11/2026",
    body: str = "Advice for residents.",
    area: str = "Kent",
    **front: Any,
) -> Path:
    """An advisory file ``<folder>/<name>.md``: fenced YAML front matter, then Markdown."""
    meta = {"title": title, "url": url, "area": area, "publish": {"date": date}, **front}
    path = folder / f"{name}.md"
    path.write_text(
        "```yaml\n" + yaml.safe_dump(meta, allow_unicode=True) + "```\n\n" + body + "\n",
        encoding="utf-8",
    )
    return path


HOSTILE_BODY = (
    "Residents of Dover should be careful.\n\n"
    "<script>alert('body')</script>\n\n"
    "[Click here](javascript:alert('link')) or <a href=\"javascript:alert('a')\">here</a>.\n\n"
    '<img src=x onerror="alert(\'img\')"> <iframe src="https://evil.example/"></iframe>\n\n'
    "A CDATA end ]]> in the text, and control characters: \x01\x02\x0b\x0c\x1b\x7f done.\n\n"
    '<p onclick="alert(\'p\')" style="color:red">Styled</p>\n'
)


def write_hostile_advisory(folder: Path) -> Path:
    """Everything a hostile or broken source might send: script, javascript: links,
    event handlers, ``]]>``, control characters and a title with a line break."""
    return write_advisory(
        folder,
        "hostile",
        title="Warning <script>alert('title')</script>\nSecond line\x07 in Dover",
        url="https://www.kent.police.uk/news/hostile/",
        date="09:00 20/11/2026",
        body=HOSTILE_BODY,
        og={"description": "Summary <b>bold</b> <script>alert('summary')</script>\x01 for Dover"},
    )


# What must never reach a feed or page from the hostile advisory.
HOSTILE_MARKERS = (
    "<script",
    "javascript:",
    "onerror",
    "onclick",
    "alert(",
    "<iframe",
    "\x01",
    "\x07",
    "\x1b",
)
