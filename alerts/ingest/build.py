"""The steps every kind of source shares once it has read an advisory: the title as
readers see it, a summary where the source gave none, and the areas it reaches (what
the source declares, then the text), with the warnings a reader of the report needs.
``alerts.ingest.files`` and ``alerts.ingest.entries`` read their formats; both finish
here, so a file and a feed entry saying the same thing become the same advisory."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from alerts.areas import Gazetteer
from alerts.ingest.dates import clamp_future
from alerts.tagging import AdvisoryText, Declared, decide_areas, decision_warnings
from alerts.text import one_line
from alerts.types import AdvisoryInput

TITLE_LIMIT = 300
SUMMARY_FROM_BODY = 300
_FORCE_SUFFIX = re.compile(
    r"(?:^|\s+)[|\u2013\u2014-]\s+(?P<force>[^|]*?)\s*(?:Police|Constabulary)\s*$", re.IGNORECASE
)


@dataclass
class ParsedFile:
    """An advisory read from a source (a file or a feed entry), with warnings that do
    not stop it being stored."""

    advisory: AdvisoryInput
    warnings: list[str]


def clean_title(raw: str) -> str:
    """One line, without the trailing ' | Kent Police' a force's pages add; may be empty."""
    return one_line(_FORCE_SUFFIX.sub("", one_line(raw)), limit=TITLE_LIMIT)


def publisher(raw_title: str) -> Declared | None:
    """The force a title names (' | Essex Police' -> Essex), declared as its publisher:
    another force's release is outside coverage unless it declares an area here."""
    match = _FORCE_SUFFIX.search(one_line(raw_title))
    return Declared("publisher", match.group("force")) if match else None


def published_or_first_seen(
    published_at: datetime | None,
    now: datetime,
    warning: str,
    warnings: list[str],
    *,
    future: Callable[[datetime], str],
) -> tuple[datetime, bool]:
    """The publication date, or ``now`` with ``warning`` when the source gave none;
    and whether it was assumed. A date more than a day ahead is taken as ``now`` too
    (the store keeps the time first seen), warning ``future(date)``: it would sort
    first in every feed for ever."""
    if published_at is None:
        warnings.append(warning)
        return now, True
    if (clamped := clamp_future(published_at, now)) is not None:
        warnings.append(future(published_at))
        return clamped, True
    return published_at, False


def finish_advisory(
    item: AdvisoryInput,
    declared: Iterable[Declared],
    gazetteer: Gazetteer,
    *,
    where: str,
    warnings: list[str],
) -> ParsedFile:
    """``item`` as read (its ``areas`` not yet set), finished: the summary from the
    body's start where it has none, and who it reaches, decided by the area rule
    (:func:`alerts.tagging.decide_areas`) from ``declared`` and the text, with warnings
    for an unknown area (outside coverage) and for no place at all (force-wide)."""
    # A summary made from the body is not read again as its own lede.
    text = AdvisoryText(item.title, item.summary, item.body_text, item.url)
    decision = decide_areas(gazetteer, text, declared)
    warnings += decision_warnings(decision, where, gazetteer)
    summary = item.summary or one_line(item.body_text, limit=SUMMARY_FROM_BODY)
    return ParsedFile(
        replace(item, summary=summary, areas=decision.tags, decision=decision), warnings
    )
