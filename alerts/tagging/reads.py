"""A place mention as the rule weighs it (:class:`Read`: the mention, how its context
reads, and the area it names), and the evidence or discounted place it becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from alerts.areas import Gazetteer
from alerts.tagging.context import (
    NOISE,
    Reading,
    find_lead,
    home_reading,
    read_mention,
    sentence_role,
)
from alerts.tagging.mentions import Mention, Sentence, find_mentions
from alerts.types import Basis, Discounted, Evidence, Why


@dataclass(frozen=True)
class Read:
    mention: Mention
    reading: Reading
    area: str | None  # None: a homonym the context did not resolve

    @property
    def lede(self) -> bool:
        sentence = self.mention.sentence
        return sentence.part in ("title", "summary") or sentence.paragraph == 0


def read_text(gazetteer: Gazetteer, parts: list[Sentence]) -> list[Read]:
    reads: list[Read] = []
    for sentence in parts:
        previous: Mention | None = None
        previous_lead = -1
        for mention in find_mentions(gazetteer, sentence):
            lead = find_lead(mention, previous, previous_lead)
            reading = read_mention(mention, lead)
            previous, previous_lead = mention, lead
            if reading is NOISE:
                continue
            slugs = mention.place.slugs
            area = (
                gazetteer.canonical(slugs[0])
                if len(slugs) == 1 and not mention.place.elsewhere
                else None
            )
            if reading.reason is None and reading.how is Basis.SOMEONE_HOME:
                reading = _role_from_before(parts, sentence) or reading
            reads.append(Read(mention, reading, area))
    return _resolve_homonyms(gazetteer, reads)


def _role_from_before(parts: list[Sentence], sentence: Sentence) -> Reading | None:
    """ "Police are searching for Daniel Webb, who is wanted. He is from Gravesend.": a
    home whose sentence says nothing of what happened takes the role the nearest of the
    three sentences before it (in the same part) that says one gives."""
    position = parts.index(sentence)
    for before in reversed(parts[max(0, position - 3) : position]):
        if before.part != sentence.part:
            continue
        if (role := sentence_role(before.words)) is not None:
            return home_reading(role)
    return None


def _resolve_homonyms(gazetteer: Gazetteer, reads: list[Read]) -> list[Read]:
    """A name two places share ("Minster"), or one better known elsewhere ("Leeds"),
    is the place whose district the rest of the text names; else it decides nothing."""
    context = {
        gazetteer.district_of(r.area)
        for r in reads
        if r.area is not None and r.reading.reason is not Why.OTHER_COUNTY
    }
    resolved: list[Read] = []
    for read in reads:
        if read.area is not None:
            resolved.append(read)
            continue
        slugs = read.mention.place.slugs
        fits = [slug for slug in slugs if gazetteer.district_of(slug) in context]
        if len(fits) == 1:
            district = gazetteer.node(gazetteer.district_of(fits[0]) or fits[0]).name
            reading = read.reading
            if reading.reason is None:
                reading = replace(reading, detail=f"{district}, which the text also names")
            resolved.append(Read(read.mention, reading, gazetteer.canonical(fits[0])))
            continue
        if read.reading.reason is not None:
            unresolved = Reading(read.reading.reason, detail=read.reading.detail)
        elif read.mention.place.elsewhere:
            unresolved = Reading(Why.ALSO_ELSEWHERE)
        else:
            where = " or ".join(
                f"{gazetteer.node(s).name} ({gazetteer.node(gazetteer.district_of(s) or s).name})"
                for s in slugs
            )
            unresolved = Reading(Why.AMBIGUOUS, detail=where)
        resolved.append(Read(read.mention, unresolved, None))
    return resolved


_T = TypeVar("_T", Evidence, Discounted)


def unique(items: Sequence[_T]) -> tuple[_T, ...]:
    """The same words said twice (a summary repeating the first paragraph) once."""
    seen: set[tuple[str | None, str, str, str]] = set()
    kept: list[_T] = []
    for item in items:
        code = item.basis if isinstance(item, Evidence) else item.why
        key = (item.area, item.words, code.value, item.detail)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return tuple(kept)


def evidence_of(read: Read) -> Evidence:
    if read.area is None:
        raise ValueError("evidence needs an area")
    if read.reading.reason is Why.STOPPED_AT:
        return Evidence(
            read.area, read.mention.quote(), read.mention.sentence.part, Basis.STOPPED_ONLY
        )
    return Evidence(
        read.area,
        read.mention.quote(),
        read.mention.sentence.part,
        read.reading.how,
        read.reading.detail,
    )


def discounted_of(read: Read, why: Why, detail: str = "") -> Discounted:
    return Discounted(read.mention.written, read.area, read.mention.quote(), why, detail)
