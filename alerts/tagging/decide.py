"""The rule: who an advisory reaches (DESIGN.md, "Decisions > Areas").

- A declared area below the force is authoritative: the advisory reaches all of it; the
  places in the text neither narrow it nor add to it (inside it they are kept as places
  mentioned, for display).
- Declared as the force, or not declared, the text decides, by evidence of where the
  thing happened or whom it is for; the title and first paragraph weigh most. "Across
  Kent", or no place at all, is force-wide.
- A declared area the gazetteer does not know is outside coverage.
- Not declared, text naming places elsewhere (the gazetteer's ``outside:``) or another
  force, and nothing in the force area, is outside coverage; so is a national warning
  ("across the UK", "National Crime Agency") that names nowhere here, unless the
  operator maps ``National`` to the force (an ``area_aliases:`` entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

from alerts.areas import Gazetteer, PlaceName, fold_words
from alerts.errors import UnknownArea
from alerts.tagging import words as lex
from alerts.tagging.context import (
    NOISE,
    Reading,
    county_phrase,
    find_lead,
    national_phrase,
    other_force,
    read_mention,
)
from alerts.tagging.mentions import (
    Mention,
    OutsideMention,
    Sentence,
    find_mentions,
    find_outside,
    sentences,
)
from alerts.types import AreaDecision, Discounted, Evidence

# Bumped whenever the rule changes what a text is tagged with, so that configured
# folders are read again (see alerts.ingest.directory.parser_fingerprint).
RULE_VERSION = 3


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


@dataclass(frozen=True)
class _Read:
    mention: Mention
    reading: Reading
    area: str | None  # None: a homonym the context did not resolve

    @property
    def lede(self) -> bool:
        sentence = self.mention.sentence
        return sentence.part in ("title", "summary") or sentence.paragraph == 0


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
    reads = _read_text(gazetteer, parts)
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
                Discounted(
                    r.mention.written, r.area, r.mention.quote(), "the advisory is outside coverage"
                )
                for r in reads
                if r.area != root and not r.reading.noise and r.reading.reason is None
            ),
        )
    decision = _from_text(gazetteer, parts, reads, _read_outside(parts, gazetteer), bool(known))
    if decision.no_place and not known:
        decision = _national(gazetteer, parts, decision)
    if decision.no_place and not known:
        decision = _published_elsewhere(gazetteer, text.url, decision)
    at_root = tuple(
        Evidence(
            root, f"{item.key}: {item.value}", "declared", "declared force area; the text decides"
        )
        for item, slug in known
        if slug == root
    )
    return replace(
        decision, evidence=decision.evidence + at_root, declared=shown, unknown=tuple(unknown)
    )


@dataclass(frozen=True)
class _Elsewhere:
    """A place outside the force area, or another force, as the text names it."""

    mention: OutsideMention
    reading: Reading

    def discounted(self) -> Discounted:
        if self.mention.name.force:
            reason = "another police force"
        elif self.reading.reason is None:
            reason = "a place outside the force area"
        else:
            reason = f"a place outside the force area ({self.reading.reason})"
        quote = Mention(self.mention.sentence, self.mention.first, self.mention.last, _NOWHERE)
        return Discounted(self.mention.written, None, quote.quote(), reason)

    @property
    def evidence(self) -> bool:
        """Says the thing happened there ("in Romford"), or is signed by another force; a
        suspect's home, a court, or "travelled from London" does not."""
        return self.mention.name.force or (self.reading.reason is None and self.reading.strong)


_NOWHERE = PlaceName("", ())


def _read_outside(parts: list[Sentence], gazetteer: Gazetteer) -> list[_Elsewhere]:
    """Places outside the force area and other forces, each read by its context as a
    place here would be ("in Chelmsford" is where it happened; "a man from Basildon
    was arrested" a suspect's home)."""
    found: list[_Elsewhere] = []
    for sentence in parts:
        previous: Mention | None = None
        previous_lead = -1
        for named in find_outside(gazetteer, sentence):
            place = PlaceName(named.name.name, (), common_word=named.name.common_word)
            mention = Mention(sentence, named.first, named.last, place)
            lead = find_lead(mention, previous, previous_lead)
            previous, previous_lead = mention, lead
            if named.name.force:
                found.append(_Elsewhere(named, Reading(None, "another police force")))
                continue
            reading = read_mention(mention, lead)
            if reading is NOISE or reading.reason in _NOT_A_PLACE or _person_named(named):
                continue
            found.append(_Elsewhere(named, reading))
    return found


# Readings that say the words are not a place at all ("Inspector Andy Hastings").
_NOT_A_PLACE = ("a person's name", "the name of a police operation")


def _person_named(named: OutsideMention) -> bool:
    """ "John Lancaster, 45," or "charged Paul Chester": a name after a capitalised
    word that is not a preposition or a compass point, in a sentence that is not in
    title case, or before an age. Such a surname is not another force's town."""
    words = named.sentence.words
    after = words[named.last + 1 : named.last + 2]
    if after and after[0].text.isdigit() and "," in after[0].gap:
        return True
    if named.first == 0:
        return False
    before = words[named.first - 1]
    if not before.capitalised or before.text[:1].isdigit():
        return False
    if words[named.first].gap.strip():
        return False  # "Erdington, Birmingham"
    if before.fold in lex.PLACE_PREPOSITIONS | lex.OTHER_PREPOSITIONS | lex.REGION_PREFIXES | {
        "the"
    }:
        return False
    capitalised = sum(w.text[:1].isupper() for w in words)
    return capitalised * 2 <= len(words)  # "Appeal After Croydon Stabbing" is title case


def _national(gazetteer: Gazetteer, parts: list[Sentence], decision: AreaDecision) -> AreaDecision:
    """A national warning that names nowhere in the force area and declares nothing:
    force-wide only when the operator says so by mapping "National" to the force (an
    ``area_aliases:`` entry, or an alias in the gazetteer); otherwise outside coverage.
    A force that republishes one declares itself (``area: Kent``, "| Kent Police")."""
    phrase = next(
        (
            found
            for sentence in parts
            if (found := national_phrase(sentence.words, sentence.part, sentence.paragraph))
        ),
        None,
    )
    if phrase is None:
        return decision
    try:
        national = gazetteer.resolve("National")
    except UnknownArea:
        national = None
    if national == gazetteer.root.slug:
        return replace(
            decision,
            evidence=(
                *decision.evidence,
                Evidence(
                    national,
                    phrase,
                    "text",
                    "a national warning; 'National' is an alias of the force",
                ),
            ),
            no_place=False,
        )
    return AreaDecision(
        areas=frozenset(),
        discounted=(
            *decision.discounted,
            Discounted(
                phrase,
                None,
                phrase,
                "a national warning naming nowhere in the force area"
                " (map 'National' to the force in area_aliases: to send these force-wide)",
            ),
        ),
        outside_coverage=True,
    )


def _published_elsewhere(gazetteer: Gazetteer, url: str, decision: AreaDecision) -> AreaDecision:
    """Text naming nowhere, declaring nothing, published on another force's site (or
    Action Fraud's, the NCA's): that publisher's news, outside coverage."""
    host = (urlsplit(url).hostname or "").casefold()

    def on(sites: tuple[str, ...]) -> bool:
        return any(host == site or host.endswith("." + site) for site in sites)

    if not host or not on(gazetteer.outside_sites) or on(gazetteer.sites):
        return decision
    return AreaDecision(
        areas=frozenset(),
        discounted=(
            *decision.discounted,
            Discounted(host, None, url, "published on another force's or a national site"),
        ),
        outside_coverage=True,
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


def _read_text(gazetteer: Gazetteer, parts: list[Sentence]) -> list[_Read]:
    reads: list[_Read] = []
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
            reads.append(_Read(mention, reading, area))
    return _resolve_homonyms(gazetteer, reads)


def _sentences(text: AdvisoryText) -> list[Sentence]:
    return [
        *sentences("title", text.title),
        *sentences("summary", text.summary),
        *sentences("text", text.text),
    ]


def _resolve_homonyms(gazetteer: Gazetteer, reads: list[_Read]) -> list[_Read]:
    """A name two places share ("Minster"), or one better known elsewhere ("Leeds"),
    is the place whose district the rest of the text names; else it decides nothing."""
    context = {
        gazetteer.district_of(r.area)
        for r in reads
        if r.area is not None and not (r.reading.reason or "").startswith("a place of that name")
    }
    resolved: list[_Read] = []
    for read in reads:
        if read.area is not None:
            resolved.append(read)
            continue
        slugs = read.mention.place.slugs
        fits = [slug for slug in slugs if gazetteer.district_of(slug) in context]
        if len(fits) == 1:
            district = gazetteer.node(gazetteer.district_of(fits[0]) or fits[0]).name
            reading = read.reading
            how = (
                f"{reading.how} ({district}, which the text also names)"
                if reading.reason is None
                else reading.how
            )
            resolved.append(
                _Read(
                    read.mention,
                    Reading(reading.reason, how, reading.strong),
                    gazetteer.canonical(fits[0]),
                )
            )
            continue
        if read.mention.place.elsewhere:
            reason = "also a place outside the force area, and nothing here puts it inside"
        else:
            where = " or ".join(
                f"{gazetteer.node(s).name} ({gazetteer.node(gazetteer.district_of(s) or s).name})"
                for s in slugs
            )
            reason = f"names more than one place ({where}) and the text does not say which"
        resolved.append(_Read(read.mention, Reading(read.reading.reason or reason), None))
    return resolved


def _declared(
    gazetteer: Gazetteer,
    below: list[tuple[Declared, str]],
    reads: list[_Read],
    shown: tuple[str, ...],
    unknown: tuple[str, ...],
) -> AreaDecision:
    areas = gazetteer.least_specific(slug for _, slug in below)
    evidence = tuple(
        Evidence(slug, f"{item.key}: {item.value}", "declared", "declared area")
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
            mentioned.append(
                Evidence(
                    read.area, read.mention.quote(), read.mention.sentence.part, read.reading.how
                )
            )
        else:
            reason = read.reading.reason or f"outside the declared area ({names})"
            discounted.append(
                Discounted(read.mention.written, read.area, read.mention.quote(), reason)
            )
    return AreaDecision(
        areas=frozenset(areas),
        evidence=evidence,
        mentioned=_unique(mentioned),
        discounted=_unique(discounted),
        declared=shown,
        unknown=unknown,
    )


def _elsewhere(
    gazetteer: Gazetteer, reads: list[_Read], outside: list[_Elsewhere]
) -> AreaDecision | None:
    """Outside coverage when the text is another force's news: it names nothing in the
    force area as where something happened and places elsewhere (or another force)
    instead, and neither names the force ("Kent", "Kent Police"). A name a place here
    shares with one elsewhere ("Rainham", "Hythe") is the place here unless the rest of
    the text is about elsewhere."""
    root = gazetteer.root.slug
    if not outside or any(
        r.area == root and (r.reading.reason is None or r.reading.reason.startswith("a police"))
        for r in reads
    ):
        return None
    evidence = [r for r in reads if r.area is not None and r.reading.reason is None]
    about_elsewhere = [o for o in outside if o.evidence]
    shared = [r for r in evidence if fold_words(r.mention.place.name) in gazetteer.shared_names]
    named_here = any(r.area is not None for r in reads)
    if evidence and not (about_elsewhere and len(shared) == len(evidence)):
        return None
    if not evidence and not about_elsewhere and named_here:
        return None  # "a man from Croydon was jailed at Maidstone Crown Court"
    names = ", ".join(dict.fromkeys(o.mention.written for o in outside))
    discounted = [
        Discounted(
            r.mention.written,
            r.area,
            r.mention.quote(),
            f"also a place outside the force area, and the text is about elsewhere ({names})",
        )
        for r in shared
    ]
    discounted += [
        Discounted(r.mention.written, r.area, r.mention.quote(), r.reading.reason)
        for r in reads
        if r.reading.reason is not None
    ]
    discounted += [o.discounted() for o in outside]
    return AreaDecision(areas=frozenset(), discounted=_unique(discounted), outside_coverage=True)


def _from_text(
    gazetteer: Gazetteer,
    parts: list[Sentence],
    reads: list[_Read],
    outside: list[_Elsewhere],
    declared: bool,
) -> AreaDecision:
    """``declared``: the force itself is declared (``area: Kent``, "| Kent Police"), so
    places elsewhere do not make it another force's news."""
    root = gazetteer.root.slug
    if not declared and (elsewhere_decision := _elsewhere(gazetteer, reads, outside)):
        return elsewhere_decision
    county: list[Evidence] = []
    county_lede: list[Evidence] = []
    for read in reads:
        if read.area == root and read.reading.reason is None and read.reading.county:
            found = Evidence(
                root, read.mention.quote(), read.mention.sentence.part, "the whole force area"
            )
            county.append(found)
            if read.lede:
                county_lede.append(found)
    for sentence in parts:
        if phrase := county_phrase(sentence.words):
            found = Evidence(root, phrase, sentence.part, "the whole force area")
            county.append(found)
            if sentence.part in ("title", "summary") or sentence.paragraph == 0:
                county_lede.append(found)
    evidence = [r for r in reads if r.area is not None and r.reading.reason is None]
    specific = [r for r in evidence if r.area != root]
    lede = [r for r in specific if r.lede]
    strong_below = [r for r in specific if not r.lede and r.reading.strong]
    passing: list[_Read] = []
    if county_lede:
        chosen: list[_Read] = []
        passing = specific
    elif lede or strong_below:
        chosen = lede + strong_below
        passing = [r for r in specific if r not in chosen]
    elif county:
        chosen, passing = [], specific
    else:
        chosen = specific
    discounted = [
        Discounted(r.mention.written, r.area, r.mention.quote(), r.reading.reason or "")
        for r in reads
        if r.reading.reason is not None and r.area != root
    ]
    if county_lede or (county and not chosen):
        discounted += [
            Discounted(
                r.mention.written,
                r.area,
                r.mention.quote(),
                "the advisory is for the whole force area",
            )
            for r in passing
        ]
        return AreaDecision(
            areas=frozenset([root]),
            evidence=_unique(county),
            discounted=_unique(discounted),
            force_wide=True,
        )
    discounted += [
        Discounted(
            r.mention.written,
            r.area,
            r.mention.quote(),
            "named only in passing, below the first paragraph",
        )
        for r in passing
    ]
    if chosen:
        areas = gazetteer.most_specific(r.area for r in chosen if r.area is not None)
        decided = [
            Evidence(r.area, r.mention.quote(), r.mention.sentence.part, r.reading.how)
            for r in chosen
            if r.area is not None
        ]
        return AreaDecision(
            areas=frozenset(areas), evidence=_unique(decided), discounted=_unique(discounted)
        )
    at_root = [
        Evidence(root, r.mention.quote(), r.mention.sentence.part, r.reading.how)
        for r in evidence
        if r.area == root
    ]
    if not at_root and not any(r.area == root for r in reads):
        # Nothing here names the force area, and something names another: another
        # force's release, not ours to send.
        elsewhere = [d for d in discounted if d.reason.startswith("a place of that name in")]
        for sentence in parts:
            if force := other_force(sentence.words):
                elsewhere.append(Discounted(force, None, force, "another police force"))
        if elsewhere:
            return AreaDecision(
                areas=frozenset(), discounted=_unique(discounted + elsewhere), outside_coverage=True
            )
    return AreaDecision(
        areas=frozenset([root]),
        evidence=_unique(at_root),
        discounted=_unique(discounted),
        force_wide=True,
        no_place=not at_root,
    )


_T = TypeVar("_T", Evidence, Discounted)


def _unique(items: Sequence[_T]) -> tuple[_T, ...]:
    """The same words said twice (a summary repeating the first paragraph) once."""
    seen: set[tuple[str | None, str, str]] = set()
    kept: list[_T] = []
    for item in items:
        key = (item.area, item.words, item.how if isinstance(item, Evidence) else item.reason)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return tuple(kept)
