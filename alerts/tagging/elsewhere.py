"""Another force's news: places outside the force area and other forces as the text
names them, national warnings, and releases published on another force's site."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from alerts.areas import Gazetteer, PlaceName, fold_words
from alerts.errors import UnknownArea
from alerts.tagging import words as lex
from alerts.tagging.context import NOISE, Reading, find_lead, national_phrase, read_mention
from alerts.tagging.mentions import Mention, OutsideMention, Sentence, find_outside
from alerts.tagging.reads import Read, discounted_of, unique
from alerts.types import AreaDecision, Basis, Discounted, Evidence, Why


@dataclass(frozen=True)
class Elsewhere:
    """A place outside the force area, or another force, as the text names it."""

    mention: OutsideMention
    reading: Reading

    def discounted(self) -> Discounted:
        quote = Mention(self.mention.sentence, self.mention.first, self.mention.last, _NOWHERE)
        if self.mention.name.force:
            return Discounted(self.mention.written, None, quote.quote(), Why.OTHER_FORCE)
        inner = self.reading.reason
        detail = "" if inner is None else inner.say(self.reading.detail)
        return Discounted(self.mention.written, None, quote.quote(), Why.OUTSIDE_PLACE, detail)

    @property
    def evidence(self) -> bool:
        """Says the thing happened there ("in Romford"), or is signed by another force; a
        suspect's home, a court, or "travelled from London" does not."""
        return self.mention.name.force or (self.reading.reason is None and self.reading.strong)


_NOWHERE = PlaceName("", ())


def read_outside(parts: list[Sentence], gazetteer: Gazetteer) -> list[Elsewhere]:
    """Places outside the force area and other forces, each read by its context as a
    place here would be ("in Chelmsford" is where it happened; "a man from Basildon
    was arrested" a suspect's home)."""
    found: list[Elsewhere] = []
    for sentence in parts:
        previous: Mention | None = None
        previous_lead = -1
        for named in find_outside(gazetteer, sentence):
            place = PlaceName(named.name.name, (), common_word=named.name.common_word)
            mention = Mention(sentence, named.first, named.last, place)
            lead = find_lead(mention, previous, previous_lead)
            previous, previous_lead = mention, lead
            if named.name.force:
                found.append(Elsewhere(named, Reading(None)))
                continue
            reading = read_mention(mention, lead)
            if (
                reading is NOISE
                or (reading.reason and reading.reason.not_a_place)
                or _person_named(named)
            ):
                continue
            found.append(Elsewhere(named, reading))
    return found


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


def national(gazetteer: Gazetteer, parts: list[Sentence], decision: AreaDecision) -> AreaDecision:
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
                Evidence(national, phrase, "text", Basis.NATIONAL_ALIAS),
            ),
            no_place=False,
        )
    return AreaDecision(
        areas=frozenset(),
        discounted=(
            *decision.discounted,
            Discounted(phrase, None, phrase, Why.NATIONAL),
        ),
        outside_coverage=True,
    )


def on_sites(host: str, sites: tuple[str, ...]) -> bool:
    return any(host == site or host.endswith("." + site) for site in sites)


def own_site(gazetteer: Gazetteer, url: str) -> bool:
    """Published on the force's own site (``sites:``, kent.police.uk)."""
    return on_sites((urlsplit(url).hostname or "").casefold(), gazetteer.sites)


def published_elsewhere(gazetteer: Gazetteer, url: str, decision: AreaDecision) -> AreaDecision:
    """Declaring nothing and published on another force's site (or Action Fraud's, the
    NCA's): that publisher's news, outside coverage, whatever places here it names."""
    host = (urlsplit(url).hostname or "").casefold()
    if not host or not on_sites(host, gazetteer.outside_sites) or on_sites(host, gazetteer.sites):
        return decision
    root = gazetteer.root.slug
    named_here = [
        Discounted(gazetteer.node(e.area).name, e.area, e.words, Why.PUBLISHED_ELSEWHERE)
        for e in decision.evidence
        if e.area != root and e.area in gazetteer
    ]
    return AreaDecision(
        areas=frozenset(),
        discounted=unique(
            [
                *named_here,
                *decision.discounted,
                Discounted(host, None, url, Why.PUBLISHED_ELSEWHERE),
            ]
        ),
        outside_coverage=True,
    )


def elsewhere_decision(
    gazetteer: Gazetteer, reads: list[Read], outside: list[Elsewhere]
) -> AreaDecision | None:
    """Outside coverage when the text is another force's news: it names nothing in the
    force area as where something happened and places elsewhere (or another force)
    instead, and neither names the force ("Kent", "Kent Police"). A name a place here
    shares with one elsewhere ("Rainham", "Hythe") is the place here unless the rest of
    the text is about elsewhere."""
    root = gazetteer.root.slug
    if not outside or any(
        r.area == root and (r.reading.reason is None or r.reading.reason.names_the_force)
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
    discounted = [discounted_of(r, Why.ABOUT_ELSEWHERE, names) for r in shared]
    discounted += [
        discounted_of(r, r.reading.reason, r.reading.detail)
        for r in reads
        if r.reading.reason is not None
    ]
    discounted += [o.discounted() for o in outside]
    return AreaDecision(areas=frozenset(), discounted=unique(discounted), outside_coverage=True)
