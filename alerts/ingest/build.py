"""The steps every kind of source shares once it has read an advisory: the title as
readers see it, a summary where the source gave none, and the areas it reaches (what
the source declares, then the text), with the warnings a reader of the report needs.
``alerts.ingest.files`` and ``alerts.ingest.entries`` read their formats; both finish
here, so a file and a feed entry saying the same thing become the same advisory."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from alerts.areas import Gazetteer
from alerts.text import one_line
from alerts.types import AdvisoryInput

TITLE_LIMIT = 300
SUMMARY_FROM_BODY = 300
_FORCE_SUFFIX = re.compile(r"(?:^|\s+)[|\u2013\u2014-]\s+[^|]*(?:Police|Constabulary)\s*$", re.IGNORECASE)


@dataclass
class ParsedFile:
    """An advisory read from a source (a file or a feed entry), with warnings that do
    not stop it being stored."""

    advisory: AdvisoryInput
    warnings: list[str]


def clean_title(raw: str) -> str:
    """One line, without the trailing ' | Kent Police' a force's pages add; may be empty."""
    return one_line(_FORCE_SUFFIX.sub("", one_line(raw)), limit=TITLE_LIMIT)


def published_or_first_seen(
    published_at: datetime | None, now: datetime, warning: str, warnings: list[str]
) -> tuple[datetime, bool]:
    """The publication date, or ``now`` with ``warning`` when the source gave none;
    and whether it was assumed."""
    if published_at is not None:
        return published_at, False
    warnings.append(warning)
    return now, True


def finish_advisory(
    item: AdvisoryInput,
    declared: Iterable[str],
    gazetteer: Gazetteer,
    *,
    where: str,
    warnings: list[str],
) -> ParsedFile:
    """``item`` as read (its ``areas`` not yet set), finished: the summary from the
    body's start where it has none, and the areas tagged from ``declared`` (gazetteer
    slugs) and the text; an advisory naming no area is force-wide, with a warning."""
    summary = item.summary or one_line(item.body_text, limit=SUMMARY_FROM_BODY)
    areas, force_wide = gazetteer.tag_advisory(declared, item.title, summary, item.body_text)
    if force_wide:
        warnings.append(f"{where}: no area named; treated as force-wide ({gazetteer.root.name})")
    return ParsedFile(replace(item, summary=summary, areas=frozenset(areas)), warnings)
