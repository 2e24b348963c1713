"""The rule: who an advisory reaches (DESIGN.md, "Decisions > Areas").

- A declared area below the force is authoritative: the advisory reaches all of it; the
  places in the text neither narrow it nor add to it (inside it they are kept as places
  mentioned, for display).
- Declared as the force, or not declared, the text decides, by evidence of where the
  thing happened or whom it is for; the title and first paragraph weigh most. "Across
  Kent", advice the force gives to all (its places further down are examples), or no
  place at all, is force-wide. The home of anyone charged, arrested or wanted is never
  evidence; where someone was stopped or arrested decides only when nothing else does;
  a victim's home counts unless the harm was a collision the text places elsewhere.
- A declared area the gazetteer does not know is outside coverage.
- Not declared, text naming places elsewhere (the gazetteer's ``outside:``) or another
  force, and nothing in the force area, is outside coverage; so is a national warning
  ("across the UK", "National Crime Agency") that names nowhere here, unless the
  operator maps ``National`` to the force (an ``area_aliases:`` entry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from alerts.areas import Gazetteer
from alerts.errors import UnknownArea
from alerts.tagging.context import (
    Reading,
    advice_words,
    collision_elsewhere,
    county_phrase,
    example_words,
    other_force,
)
from alerts.tagging.elsewhere import (
    Elsewhere,
    elsewhere_decision,
    national,
    own_site,
    published_elsewhere,
    read_outside,
)
from alerts.tagging.mentions import Sentence, sentences
from alerts.tagging.reads import Read, discounted_of, evidence_of, read_text, unique
from alerts.types import AreaDecision, Basis, Discounted, Evidence, Why

# Bumped whenever the rule changes what a text is tagged with, so that configured
# folders are read again (see alerts.ingest.directory.parser_fingerprint).
RULE_VERSION = 4


@dataclass(frozen=True)
class AdvisoryText:
    """What the text rule reads: the title, the summary (og:description) and the body."""

    title: str
    summary: str = ""
    text: str = ""
    #: Where it was published: another force's site is a hint when the text names nowhere.
    url: str = ""


@dataclass(frozen=True)
class Declared:
    """An area an advisory declares: ``key`` says where (``area``, ``areas``, ``source``,
    ``category``, ``publisher`` for the force a title names, "... | Essex Police"),
    ``value`` is as written. An unknown category is ignored (most are topics, "Fraud");
    any other unknown area makes the advisory outside coverage unless a known one is
    declared too."""

    key: str
    value: str

    @property
    def strict(self) -> bool:
        return self.key != "category"


def declared_areas(front_matter: dict[str, object]) -> list[Declared]:
    """The ``area:`` and ``areas:`` of front matter, each a string or a YAML list."""
    found: list[Declared] = []
    for key in ("area", "areas"):
        value = front_matter.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None or (isinstance(item, str) and not item.strip()):
                continue
            found.append(Declared(key, str(item).strip()))
    return found


def decide_areas(
    gazetteer: Gazetteer, text: AdvisoryText, declared: Iterable[Declared] = ()
) -> AreaDecision:
    """Decide the areas an advisory concerns, with the words that decided each."""
    root = gazetteer.root.slug
    known: list[tuple[Declared, str]] = []
    unknown: list[str] = []
    declared = list(declared)
    if any(item.key in ("area", "areas", "source") for item in declared):
        # An area written in the advisory (or its source's) says more than the force
        # named in its title: "area: Medwya | Kent Police" is a typo, not Kent news.
        declared = [item for item in declared if item.key != "publisher"]
    for item in declared:
        slugs = _resolve(gazetteer, item.value)
        if slugs:
            known += [(item, slug) for slug in slugs]
        elif item.strict:
            unknown.append(item.value)
    shown = tuple(f"{item.key}: {item.value}" for item, _ in known) + tuple(unknown)
    parts = _sentences(text)
    reads = read_text(gazetteer, parts)
    below = [(item, slug) for item, slug in known if slug != root]
    if below:
        return _declared(gazetteer, below, reads, shown, tuple(unknown))
    if unknown and not known:
        return AreaDecision(
            areas=frozenset(),
            declared=shown,
            unknown=tuple(unknown),
            outside_coverage=True,
            discounted=tuple(
                Discounted(r.mention.written, r.area, r.mention.quote(), Why.OUTSIDE_COVERAGE)
                for r in reads
                if r.area != root and not r.reading.noise and r.reading.reason is None
            ),
        )
    outside = read_outside(parts, gazetteer)
    reads = _victims_hurt_elsewhere(reads, outside)
    decision = _from_text(
        gazetteer,
        parts,
        reads,
        outside,
        bool(known),
        ours=bool(known) or own_site(gazetteer, text.url),
    )
    if decision.no_place and not known:
        decision = national(gazetteer, parts, decision)
    if (
        not known
        and not decision.outside_coverage
        and all(e.basis in _NOT_WHERE_IT_HAPPENED for e in decision.evidence)
    ):
        # Published on another force's site and declaring nothing: that force's news when
        # it names nowhere here, or only someone's home ("his victims included a woman
        # from Dartford") or where someone was stopped. Where it happened ("a burglary in
        # Dartford") decides whoever published it.
        decision = published_elsewhere(gazetteer, text.url, decision)
    at_root = tuple(
        Evidence(root, f"{item.key}: {item.value}", "declared", Basis.DECLARED_FORCE)
        for item, slug in known
        if slug == root
    )
    return replace(
        decision, evidence=decision.evidence + at_root, declared=shown, unknown=tuple(unknown)
    )


_NOT_WHERE_IT_HAPPENED = frozenset(
    [Basis.VICTIM_HOME, Basis.SOMEONE_HOME, Basis.STOPPED_ONLY, Basis.FORCE_AREA]
)


def _resolve(gazetteer: Gazetteer, value: str) -> list[str]:
    """The areas a declared value names: one name, or several separated by commas,
    semicolons or slashes ("Medway, Swale"). Empty when any part is unknown."""
    try:
        return [gazetteer.resolve(value)]
    except UnknownArea:
        pass
    parts = [p.strip() for p in value.replace(";", ",").replace("/", ",").split(",") if p.strip()]
    if len(parts) < 2:
        return []
    try:
        return [gazetteer.resolve(part) for part in parts]
    except UnknownArea:
        return []


def _sentences(text: AdvisoryText) -> list[Sentence]:
    return [
        *sentences("title", text.title),
        *sentences("summary", text.summary),
        *sentences("text", text.text),
    ]


def _declared(
    gazetteer: Gazetteer,
    below: list[tuple[Declared, str]],
    reads: list[Read],
    shown: tuple[str, ...],
    unknown: tuple[str, ...],
) -> AreaDecision:
    areas = gazetteer.least_specific(slug for _, slug in below)
    evidence = tuple(
        Evidence(slug, f"{item.key}: {item.value}", "declared", Basis.DECLARED)
        for item, slug in below
        if slug in areas
    )
    names = ", ".join(gazetteer.node(a).name for a in sorted(areas))
    mentioned: list[Evidence] = []
    discounted: list[Discounted] = []
    for read in reads:
        inside = read.area is not None and any(
            read.area == area or area in gazetteer.ancestors(read.area) for area in areas
        )
        if read.area == gazetteer.root.slug:
            continue
        if inside and read.area is not None and read.reading.reason is None:
            mentioned.append(evidence_of(read))
        elif read.reading.reason is not None:
            discounted.append(discounted_of(read, read.reading.reason, read.reading.detail))
        else:
            discounted.append(discounted_of(read, Why.OUTSIDE_DECLARED, names))
    return AreaDecision(
        areas=frozenset(areas),
        evidence=evidence,
        mentioned=unique(mentioned),
        discounted=unique(discounted),
        declared=shown,
        unknown=unknown,
    )


def _from_text(
    gazetteer: Gazetteer,
    parts: list[Sentence],
    reads: list[Read],
    outside: list[Elsewhere],
    declared: bool,
    *,
    ours: bool = False,
) -> AreaDecision:
    """``declared``: the force itself is declared (``area: Kent``, "| Kent Police"), so
    places elsewhere do not make it another force's news. ``ours``: declared, or
    published on the force's own site (advice at its top is the force's own)."""
    root = gazetteer.root.slug
    if not declared and (theirs := elsewhere_decision(gazetteer, reads, outside)):
        return theirs
    county: list[Evidence] = []
    county_lede: list[Evidence] = []
    for read in reads:
        if read.area == root and read.reading.reason is None and read.reading.county:
            found = Evidence(
                root, read.mention.quote(), read.mention.sentence.part, Basis.FORCE_AREA
            )
            county.append(found)
            if read.lede:
                county_lede.append(found)
    for sentence in parts:
        if phrase := county_phrase(sentence.words):
            found = Evidence(root, phrase, sentence.part, Basis.FORCE_AREA)
            county.append(found)
            if sentence.part in ("title", "summary") or sentence.paragraph == 0:
                county_lede.append(found)
    evidence = [r for r in reads if r.area is not None and r.reading.reason is None]
    specific = [r for r in evidence if r.area != root]
    lede = [r for r in specific if r.lede]
    strong_below = [r for r in specific if not r.lede and r.reading.strong]
    passing: list[Read] = []
    stopped = [
        r for r in reads if r.reading.reason is Why.STOPPED_AT and r.area not in (None, root)
    ]
    if (
        not county_lede
        and not lede
        and (specific or stopped)
        and (advice_found := _force_advice(parts, reads, root, ours))
        and _examples(gazetteer, specific + stopped, strict=not advice_found[1])
    ):
        advised = advice_found[0]
        # "Kent Police is warning...", then "victims in Deal, Hythe and Tonbridge": the
        # places below a lede addressed to the whole force are examples.
        discounted = [
            discounted_of(r, r.reading.reason, r.reading.detail)
            for r in reads
            if r.reading.reason is not None and r.area != root
        ]
        discounted += [discounted_of(r, Why.EXAMPLE) for r in specific]
        return AreaDecision(
            areas=frozenset([root]),
            evidence=unique([*county, advised]),
            discounted=unique(discounted),
            force_wide=True,
        )
    if not county_lede and not specific:
        # Where someone was stopped or arrested decides only when nothing else does ("a
        # driver was stopped in Ashford and failed a breath test").
        specific = stopped
        reads = [r for r in reads if r not in specific]
        lede = specific
    if county_lede:
        chosen: list[Read] = []
        passing = specific
    elif lede or strong_below:
        chosen = lede + strong_below
        passing = [r for r in specific if r not in chosen]
    elif county:
        chosen, passing = [], specific
    else:
        chosen = specific
    discounted = [
        discounted_of(r, r.reading.reason, r.reading.detail)
        for r in reads
        if r.reading.reason is not None and r.area != root
    ]
    if county_lede or (county and not chosen):
        discounted += [discounted_of(r, Why.FORCE_WIDE) for r in passing]
        return AreaDecision(
            areas=frozenset([root]),
            evidence=unique(county),
            discounted=unique(discounted),
            force_wide=True,
        )
    discounted += [discounted_of(r, Why.IN_PASSING) for r in passing]
    if chosen:
        areas = gazetteer.most_specific(r.area for r in chosen if r.area is not None)
        decided = [evidence_of(r) for r in chosen if r.area is not None]
        return AreaDecision(
            areas=frozenset(areas), evidence=unique(decided), discounted=unique(discounted)
        )
    at_root = [evidence_of(r) for r in evidence if r.area == root]
    if not at_root and not any(r.area == root for r in reads):
        # Nothing here names the force area, and something names another: another
        # force's release, not ours to send.
        elsewhere = [d for d in discounted if d.why is Why.OTHER_COUNTY]
        for sentence in parts:
            if force := other_force(sentence.words):
                elsewhere.append(Discounted(force, None, force, Why.OTHER_FORCE))
        if elsewhere:
            return AreaDecision(
                areas=frozenset(), discounted=unique(discounted + elsewhere), outside_coverage=True
            )
    return AreaDecision(
        areas=frozenset([root]),
        evidence=unique(at_root),
        discounted=unique(discounted),
        force_wide=True,
        no_place=not at_root,
    )


def _victims_hurt_elsewhere(reads: list[Read], outside: list[Elsewhere]) -> list[Read]:
    """A victim's home is evidence where the harm reached them there (fraud, doorstep
    crime); for a collision that the text places somewhere else, it (or the home of
    anyone in it: "two people from Ramsgate were taken to hospital") is only where they
    live. (An assault victim's home still counts: tests/test_area_rule.py pins it.)"""
    scenes = {r.area for r in reads if r.reading.reason is None and r.reading.how is Basis.SCENE}
    elsewhere = any(o.evidence for o in outside)
    weighed: list[Read] = []
    for read in reads:
        if (
            read.reading.reason is None
            and read.reading.how in (Basis.VICTIM_HOME, Basis.SOMEONE_HOME)
            and (elsewhere or scenes - {read.area, None})
            and collision_elsewhere(read.mention.sentence.words)
        ):
            read = Read(read.mention, Reading(Why.VICTIM_HOME_ELSEWHERE), read.area)
        weighed.append(read)
    return weighed


def _examples(gazetteer: Gazetteer, specific: list[Read], *, strict: bool = False) -> bool:
    """The places below advice to the whole force read as examples: in several districts
    ("victims in Folkestone, Sevenoaks and Herne Bay"), or said as examples ("in one case",
    "recent thefts", "last year"); ``strict`` (the text does not name the force): both.
    One spate in one district told as news ("the thefts happened in Northfleet and
    Gravesend on Tuesday") is that district's."""
    districts = {gazetteer.district_of(r.area) or r.area for r in specific if r.area is not None}
    several = len(districts) > 1
    framed = any(example_words(r.mention.sentence.words) for r in specific)
    return several and framed if strict else several or framed


def _force_advice(
    parts: list[Sentence], reads: list[Read], root: str, declared: bool
) -> tuple[Evidence, bool] | None:
    """Advice addressed to the whole force area: a sentence at the top (title, summary or
    first paragraph) that names the force ("Kent Police is warning", "people in Kent")
    and gives advice or launches a campaign ("warning", "urging", "a week of action").
    Where the force is declared (``area: Kent``, "| Kent Police") and the text does not
    name it, advice at the top counts too. Returns the evidence, and whether the text
    names the force (if not, the caller asks more of the examples)."""
    for read in reads:
        if (
            read.area != root
            or not read.lede
            or (read.reading.reason and not read.reading.reason.names_the_force)
        ):
            continue
        if advice_words(read.mention.sentence.words):
            quote, part = read.mention.quote(), read.mention.sentence.part
            return Evidence(root, quote, part, Basis.FORCE_ADVICE), True
    if declared:
        for sentence in parts:
            lede = sentence.part in ("title", "summary") or sentence.paragraph == 0
            if lede and advice_words(sentence.words):
                quote = " ".join(sentence.text.split())
                return Evidence(root, quote, sentence.part, Basis.FORCE_ADVICE), False
    return None
