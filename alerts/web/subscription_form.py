"""The subscription form's fields: the area boxes, areas typed as people write them,
what a link pre-fills, and each mistake in GOV.UK's words.

Errors reach the page as data (:class:`FieldError`: the words, and the areas to suggest
by name); the page lays them out. Typed entries that mean more than they seem to (a
postcode district spanning several towns stands for its whole district; a county name
for everything in it) are returned as :class:`Widening` records, which the page shows
back for a decision before anything is saved.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.areas import AreaNode, Gazetteer
from alerts.errors import UnknownArea
from alerts.subscribers import (
    InvalidSubscriber,
    Problem,
    normalise_email,
    parse_frequency,
    resolve_areas,
)
from alerts.subscribers.validation import parse_edition
from alerts.types import AreaKind

#: "A and B and C": tried as areas up to this many words (each try is a gazetteer lookup).
MAX_AND_PARTS = 8

#: GOV.UK's words for each problem (design-system error messages: say what to do).
SENTENCES = {
    Problem.EMAIL_MISSING: "Enter your email address",
    Problem.EMAIL_FORMAT: "Enter an email address in the correct format, like name@example.com",
    Problem.EMAIL_NOT_ASCII: (
        "Enter an email address with only English letters, numbers and symbols before the @, like name@example.com"
    ),
    Problem.AREAS_MISSING: "Choose at least one area, or type a town or postcode district",
    Problem.FREQUENCY_UNKNOWN: "Select how often you want alerts",
    Problem.EDITION_UNKNOWN: "Select who the emails are for: you, or people you forward them to",
}


@dataclass(frozen=True)
class FieldError:
    """One field's mistake: ``text`` says what to do; ``suggestions`` are area names the
    page offers as "Did you mean …?"."""

    text: str
    suggestions: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.suggestions:
            return self.text
        return f"{self.text}. Did you mean {' or '.join(self.suggestions)}?"


class Widens(enum.StrEnum):
    """Why a typed entry means more than it seems to."""

    POSTCODE_SPANS_TOWNS = "postcode-spans-towns"
    WHOLE_FORCE = "whole-force"


@dataclass(frozen=True)
class Widening:
    """A typed entry (``typed``) that stands for the wider ``area`` (a slug) for ``why``."""

    typed: str
    area: str
    why: Widens


@dataclass(frozen=True)
class Prefill:
    """What a link ticks: ``ticked`` slugs, and ``stands_for``, (place, ticked area) name
    pairs for places that have no box of their own (a village: its town is ticked)."""

    ticked: str
    stands_for: tuple[tuple[str, str], ...] = ()


def error_of(exc: InvalidSubscriber | UnknownArea, gazetteer: Gazetteer) -> FieldError:
    """The mistake in the form's words, from the error's data (never its message)."""
    if isinstance(exc, InvalidSubscriber):
        return FieldError(
            SENTENCES.get(exc.problem, exc.message[:1].upper() + exc.message[1:].rstrip("."))
        )
    asked = " ".join(exc.asked.split())[:60]
    where = gazetteer.root.name
    if exc.homonyms:
        return FieldError(
            f"“{asked}” is the name of more than one place in {where}: say which",
            tuple(
                f"{gazetteer.name_of(slug)} ({_parent_name(gazetteer, slug)})"
                for slug in exc.homonyms
            ),
        )
    if exc.suggestions:
        return FieldError(
            f"“{asked}” is not a place we know", tuple(gazetteer.names_of(exc.suggestions))
        )
    return FieldError(
        f"“{asked}” is not a place we know. Enter a town, district or postcode district in {where}"
    )


def _parent_name(gazetteer: Gazetteer, slug: str) -> str:
    parent = gazetteer.node(slug).parent
    return gazetteer.name_of(parent) if parent else gazetteer.root.name


def checked_fields(
    gazetteer: Gazetteer, form: dict[str, str], names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, FieldError]]:
    """The form's ``names`` fields checked: their values, and the mistake in each bad
    one (every bad field is named at once, not the first only)."""
    checks: dict[str, Callable[[], object]] = {
        "email": lambda: normalise_email(form.get("email", "")),
        "areas": lambda: resolve_areas(
            gazetteer,
            [
                *filter(None, form.get("area", "").split(",")),
                *split_areas(form.get("areas", ""), gazetteer),
            ],
        ),
        "frequency": lambda: parse_frequency(form.get("frequency", "")),
        # None when the form has no edition field (a page from before it had one).
        "forwardable": lambda: parse_edition(form.get("edition")),
    }
    values: dict[str, Any] = {}
    errors: dict[str, FieldError] = {}
    for name in names:
        try:
            values[name] = checks[name]()
        except (InvalidSubscriber, UnknownArea) as exc:
            errors[name] = error_of(exc, gazetteer)
    return values, errors


def widenings(gazetteer: Gazetteer, typed: str, ticked: str = "") -> list[Widening]:
    """The typed entries that stand for more than they seem to: a postcode district that
    spans several towns (its whole district), and the force's own name beside other
    areas, which it swallows ("Rochester, Kent" is two entries, and the second is every
    advisory in Kent; "Kent" alone says what it means). A box ticked is chosen as it
    says, so only typed entries are checked."""
    found = []
    entries = split_areas(typed, gazetteer)
    alone = len(entries) == 1 and not ticked
    for text in entries:
        try:
            named = gazetteer.node(gazetteer.lookup(text))
        except UnknownArea:
            continue
        area = gazetteer.canonical(named.slug)
        if named.kind is AreaKind.POSTCODE and gazetteer.node(area).kind is not AreaKind.TOWN:
            found.append(Widening(text, area, Widens.POSTCODE_SPANS_TOWNS))
        elif area == gazetteer.root.slug and not alone:
            found.append(Widening(text, area, Widens.WHOLE_FORCE))
    return found


def widening_key(found: list[Widening]) -> str:
    """What the page's hidden field carries once the widenings were shown: the same
    entries posted again with it are the resident's decision to keep them."""
    return "|".join(sorted({f"{' '.join(w.typed.casefold().split())}:{w.area}" for w in found}))


def split_areas(text: str, gazetteer: Gazetteer) -> list[str]:
    """The areas a resident typed: separated by commas, semicolons or lines, and also by
    "and" or "&" ("Chatham and Gillingham") where the words do not name one area
    ("Tonbridge and Malling"). Words naming no area are kept whole, so the error quotes them."""
    areas = []
    for chunk in re.split(r"[,;\n]", text):
        chunk = chunk.strip()
        if chunk:
            areas.extend(_split_and(gazetteer, chunk))
    return areas


def _split_and(gazetteer: Gazetteer, chunk: str) -> list[str]:
    pieces = re.split(r"(\s+and\s+|\s*&\s*)", chunk, flags=re.IGNORECASE)
    words, separators = pieces[0::2], pieces[1::2]
    if len(words) == 1 or len(words) > MAX_AND_PARTS:
        return [chunk]
    found: list[str] = []
    start = 0
    while start < len(words):
        # The longest run of words from here that names an area, else one word.
        for end in range(len(words), start, -1):
            candidate = words[start] + "".join(
                separators[i] + words[i + 1] for i in range(start, end - 1)
            )
            if end == start + 1 or _names_an_area(gazetteer, candidate):
                break
        found.append(candidate.strip())
        start = end
    return found if any(_names_an_area(gazetteer, part) for part in found) else [chunk]


def _names_an_area(gazetteer: Gazetteer, text: str) -> bool:
    try:
        gazetteer.resolve(text)
    except UnknownArea:
        return False
    return True


def prefilled_area(gazetteer: Gazetteer, asked: str | None) -> Prefill:
    """The boxes a link ticks (``?area=medway`` from an archive page, ``?area=chatham,
    gillingham`` from a forwarded digest). A place with no box (a village) ticks the
    nearest area above it that has one, and the page says so; names of nothing are
    left out."""
    boxes = area_choices(gazetteer).slugs
    slugs: list[str] = []
    stands_for: list[tuple[str, str]] = []
    for part in (asked or "")[:300].split(",")[:20]:
        try:
            slug = gazetteer.resolve(part)
        except UnknownArea:
            continue
        box = next(area for area in (slug, *gazetteer.ancestors(slug)) if area in boxes)
        if box != slug:
            stands_for.append((gazetteer.name_of(slug), gazetteer.name_of(box)))
        slugs.append(box)
    return Prefill(",".join(dict.fromkeys(slugs)), tuple(dict.fromkeys(stands_for)))


@dataclass(frozen=True)
class AreaChoices:
    """The boxes on the form: the whole force, then each district with its towns."""

    force: AreaNode
    districts: tuple[tuple[AreaNode, tuple[AreaNode, ...]], ...]

    @property
    def slugs(self) -> frozenset[str]:
        return frozenset(
            [
                self.force.slug,
                *(d.slug for d, _ in self.districts),
                *(t.slug for _, ts in self.districts for t in ts),
            ]
        )


@functools.lru_cache(maxsize=4)
def area_choices(gazetteer: Gazetteer) -> AreaChoices:
    areas = gazetteer.feed_areas()
    districts = [node for node in areas if node.kind is AreaKind.DISTRICT]
    return AreaChoices(
        force=gazetteer.root,
        districts=tuple(
            (
                district,
                tuple(
                    node
                    for node in areas
                    if node.parent == district.slug and node.kind is not AreaKind.DISTRICT
                ),
            )
            for district in districts
        ),
    )
