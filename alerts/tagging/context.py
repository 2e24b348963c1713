"""Reading a place mention by the words around it: does it say where the thing
happened or whom it is for (evidence), or is it a court, a road, a suspect's home, an
organisation's base or a place elsewhere (discounted, with the reason)?"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.tagging import words as lex
from alerts.tagging.mentions import Mention, Word


@dataclass(frozen=True)
class Reading:
    """What a mention says. ``reason`` is None for evidence; ``strong`` evidence ("in X",
    "X residents", a victim's home) counts anywhere, weak (a bare name) only near the top
    or when nothing stronger is found."""

    reason: str | None
    how: str = "named"
    strong: bool = False
    #: "across Kent", "Kent residents": addressed to the whole force area.
    county: bool = False
    #: Not a place mention at all ("Deal with it"): neither evidence nor discounted.
    noise: bool = False


NOISE = Reading(None, noise=True)


def read_mention(mention: Mention, lead: int) -> Reading:
    """``lead`` is the index of the word that introduces the mention ("in" of "in Deal";
    for "Luton Road, Chatham" the word before "Luton"; -1 at the start)."""
    words = mention.sentence.words
    first, last = mention.first, mention.last
    after = words[last + 1] if last + 1 < len(words) else None
    lead_word = words[lead].fold if lead >= 0 else ""

    if mention.place.common_word and not _placed(mention, lead, after):
        return NOISE
    if _named_person(words, first):
        return Reading("a person's name")
    if first > 0 and words[first - 1].fold in ("operation", "op") and words[first - 1].capitalised:
        return Reading("the name of a police operation")
    if after is not None and after.gap in ("-", "‐") and after.fold in lex.BASE_WORDS:
        return Reading("an organisation's base")
    if after is not None and after.gap in ("-", "‐") and after.fold == "wide":
        return Reading(None, "all of it", strong=True, county=True)
    if elsewhere := _other_county(words, first, last):
        return Reading(f"a place of that name in {elsewhere}, not here")
    if institution := _institution_after(words, last):
        return Reading(institution)
    if institution := _institution_before(words, first):
        return Reading(institution)
    if after is not None and after.fold in lex.PERSON_NOUNS and _spaced(after):
        return _home(mention)
    if after is not None and after.fold in lex.AUDIENCE_NOUNS and _spaced(after):
        return Reading(None, "whom it is for", strong=True, county=True)
    if lead_word in ("from", "of") and _person_before(words, lead):
        return _home(mention)
    if (
        lead_word in ("of", "in", "across", "throughout")
        and lead >= 1
        and words[lead - 1].fold in lex.AUDIENCE_NOUNS
    ):
        return Reading(None, "whom it is for", strong=True, county=True)
    if lead_word in ("in", "at", "near") and _home_before(words, lead):
        return _home(mention)
    if lead_word == "to" and lead >= 1 and words[lead - 1].fold in lex.ATTENDED_WORDS:
        return Reading(None, "where it happened", strong=True)  # "officers were called to X"
    if lead_word in lex.COUNTY_LEADS:
        return Reading(None, "where it happened", strong=True, county=True)
    if lead_word in lex.PLACE_PREPOSITIONS:
        return Reading(None, "where it happened", strong=True)
    if lead_word == "the" and lead >= 1 and words[lead - 1].fold in lex.PLACE_PREPOSITIONS:
        return Reading(None, "where it happened", strong=True)
    if lead_word == "of" and lead >= 1 and words[lead - 1].fold in lex.AREA_NOUNS:
        return Reading(None, "where it happened", strong=True)
    if after is not None and after.fold in lex.AREA_NOUNS and _spaced(after):
        return Reading(None, "where it happened", strong=True)
    return Reading(None, "named")


def find_lead(mention: Mention, previous: Mention | None, previous_lead: int) -> int:
    """The word that introduces ``mention``. In a list ("in Chatham, Gillingham and
    Rochester") each name shares the first one's; in an address ("in Luton Road,
    Chatham") the town takes the street's."""
    words = mention.sentence.words
    index = mention.first - 1
    if index < 0:
        return -1
    joined = "," in words[mention.first].gap or "/" in words[mention.first].gap
    if previous is not None and previous.sentence is mention.sentence:
        if joined and previous.last == index:
            return previous_lead
        if words[index].fold in ("and", "or") and previous.last == index - 1:
            return previous_lead
    if joined and words[index].fold in lex.STREET_WORDS and words[index].capitalised:
        # Walk back over the street's name ("12 Luton Road") to the word before it.
        index -= 1
        while (
            index >= 0
            and (words[index].capitalised or words[index].text.isdigit())
            and words[index].fold not in lex.PLACE_PREPOSITIONS
        ):
            index -= 1
        return index
    return index


def county_phrase(words: tuple[Word, ...]) -> str | None:
    """ "across the county", "county-wide": the sentence addresses the whole force area."""
    folds = [w.fold for w in words]
    for phrase in lex.COUNTY_PHRASES:
        size = len(phrase)
        for start in range(len(folds) - size + 1):
            if tuple(folds[start : start + size]) == phrase:
                return " ".join(w.text for w in words[start : start + size])
    return None


def national_phrase(words: tuple[Word, ...], part: str, paragraph: int) -> str | None:
    """ "across the UK", "nationally", "National Crime Agency": a warning for the whole
    country. "Action Fraud" counts only near the top (most local fraud warnings end by
    saying where to report)."""
    folds = [w.fold for w in words]
    lede = part in ("title", "summary") or paragraph == 0
    for phrase in lex.NATIONAL_PHRASES + lex.NATIONAL_LEDE_PHRASES:
        if phrase in lex.NATIONAL_LEDE_PHRASES and not lede:
            continue
        size = len(phrase)
        for start in range(len(folds) - size + 1):
            if tuple(folds[start : start + size]) != phrase:
                continue
            if (
                phrase in lex.NATIONAL_LEDE_PHRASES
                and start > 0
                and folds[start - 1] in lex.REPORT_LEADS
            ):
                continue  # "report it to Action Fraud": where to report, not who warns
            return " ".join(w.text for w in words[start : start + size])
    return None


def _named_person(words: tuple[Word, ...], first: int) -> bool:
    """ "Inspector Mark Hythe", "Mrs Ashford", "PC Deal": a name after a rank or title."""
    before = words[max(0, first - 2) : first]
    if not before or any(not w.capitalised or not _spaced(w) for w in (*before[1:], words[first])):
        return False
    return any(w.fold in lex.RANK_WORDS for w in before)


def other_force(words: tuple[Word, ...]) -> str | None:
    """ "Essex Police", "Thames Valley Police", "Hampshire Constabulary": another force."""
    for index, word in enumerate(words):
        if _base(word) not in lex.POLICE_WORDS:
            continue
        for before in words[max(0, index - 2) : index]:
            if before.fold in lex.OTHER_PLACES:
                return " ".join(w.text for w in words[max(0, index - 2) : index + 1])
    return None


def _base(word: Word) -> str:
    """The word without a possessive "'s": "Police's" is "police"."""
    if word.text[-2:] in ("'s", "’s", "'S", "’S"):
        return word.fold[:-1]
    return word.fold


def _spaced(word: Word) -> bool:
    return word.gap.strip() == ""


def _placed(mention: Mention, lead: int, after: Word | None) -> bool:
    """A name that is also a word ("Deal", "Sandwich") counts only as a place: after a
    preposition, in an address after a comma, or before "residents", "area"."""
    words = mention.sentence.words
    if after is not None and after.fold == "with" and _spaced(after):
        return False  # "How To Deal With Cold Callers"
    if lead >= 0 and words[lead].fold in lex.PLACE_PREPOSITIONS | lex.OTHER_PREPOSITIONS:
        return True
    if "," in words[mention.first].gap:
        return True
    return (
        after is not None
        and _spaced(after)
        and after.fold in lex.AUDIENCE_NOUNS | lex.PERSON_NOUNS | lex.AREA_NOUNS
    )


def _other_county(words: tuple[Word, ...], first: int, last: int) -> str | None:
    """ "Rainham, Essex", "Gillingham (Dorset)", "Hythe in Hampshire", "the Essex town of
    Rainham", "Rainham, east London": the same name somewhere else."""
    index = last + 1
    if index < len(words) and (
        words[index].gap.strip() in (",", "(", ", (", "(") or words[index].fold in ("in", "near")
    ):
        if words[index].fold in ("in", "near"):
            index += 1
        while index < len(words) and words[index].fold in lex.REGION_PREFIXES | {
            "the",
            "county",
            "of",
        }:
            index += 1
        if index < len(words) and words[index].fold in lex.OTHER_PLACES:
            return words[index].text
    before = [w.fold for w in words[max(0, first - 4) : first]]
    if (
        len(before) >= 2
        and before[-1] == "of"
        and before[-2] in ("town", "village", "city", "borough")
    ):
        for word in words[max(0, first - 4) : first - 2]:
            if word.fold in lex.OTHER_PLACES:
                return word.text
    return None


def _institution_after(words: tuple[Word, ...], last: int) -> str | None:
    """ "Maidstone Crown Court", "Medway Maritime Hospital", "Kent Police", "Dover Road"."""
    for index in range(last + 1, min(len(words), last + 4)):
        word = words[index]
        if not _spaced(word) and not (index == last + 1 and word.gap.strip() in ("'", "’")):
            return None
        fold = _base(word)
        if fold in lex.COURT_WORDS:
            return "a court"
        if fold in lex.POLICE_WORDS:
            if index + 1 < len(words) and words[index + 1].fold == "station":
                return "a police station"
            return "a police force or team"
        if fold in lex.HOSPITAL_WORDS:
            return "a hospital"
        if fold in lex.PRISON_WORDS:
            return "a prison"
        if not word.capitalised:
            return None
        if fold in lex.ORGANISATION_WORDS:
            return "an organisation"
        if fold in lex.STREET_WORDS:
            if fold == "street" and words[index - 1].fold == "high":
                return None  # "Chatham High Street" is in Chatham
            return "a road or street name"
    return None


def _institution_before(words: tuple[Word, ...], first: int) -> str | None:
    """ "appeared before magistrates in Sevenoaks", "taken to hospital in Ashford", "HMP
    Maidstone", "a charity based in Ashford", "the MP for Dover"."""
    if first == 0:
        return None
    lead = words[first - 1].fold
    if lead == "hmp":
        return "a prison"
    if lead not in ("in", "at", "near", "of", "for"):
        return None
    window = [_base(w) for w in words[max(0, first - 3) : first - 1]]
    if lead in ("of", "for"):
        return "a title or office" if window and window[-1] in lex.TITLE_LEADS else None
    if not window:
        return None
    # The institution is the word just before the preposition: "hospital in Ashford",
    # not "taken to hospital after an assault in Margate".
    fold = window[-1]
    if fold in lex.BASE_WORDS | {"offices", "office", "headquarters", "branch"}:
        return "an organisation's base"
    if fold in lex.COURT_WORDS:
        return "a court"
    if fold in lex.HOSPITAL_WORDS:
        return "a hospital"
    if fold in lex.PRISON_WORDS or fold == "custody":
        return "a prison or custody"
    if fold == "station" and len(window) > 1 and window[-2] == "police":
        return "a police station"
    return None


def _home_before(words: tuple[Word, ...], lead: int) -> bool:
    """ "his home in", "who lives in": the place is someone's home."""
    window = words[max(0, lead - 3) : lead]
    for index, word in enumerate(window):
        if word.fold in lex.LIVING_WORDS:
            return True
        if word.fold in lex.HOME_WORDS and index > 0 and window[index - 1].fold in lex.POSSESSIVES:
            return True
    return False


def _person_before(words: tuple[Word, ...], lead: int) -> bool:
    """ "a man from", "a 35-year-old from", "Smith, 34, of": a person's home follows
    (but not "theft from Faversham charity shop")."""
    index = lead - 1
    while index >= 0 and (words[index].text.isdigit() or words[index].fold in lex.AGE_WORDS):
        index -= 1
    if index < lead - 1:
        return True  # "a 35-year-old from", "Smith, 34, of", "aged 34, from"
    return index >= 0 and words[index].fold in lex.PERSON_NOUNS


def _home(mention: Mention) -> Reading:
    """A person's home counts when they are a victim, not when they are a suspect; read
    from the nearest word about what happened to them."""
    role = person_role(mention.sentence.words, mention.first, mention.last)
    if role == "suspect":
        return Reading("a suspect's home")
    if role == "victim":
        return Reading(None, "a victim's home", strong=True)
    return Reading(None, "someone's home")


def person_role(words: tuple[Word, ...], first: int, last: int) -> str | None:
    """ "suspect" or "victim": the role the nearest word about what happened gives the
    person at words ``first``..``last``; None when no such word is in the sentence."""
    best: tuple[int, str] | None = None
    for index, word in enumerate(words):
        if first <= index <= last:
            continue
        fold = word.fold
        if fold in lex.SUSPECT_WORDS:
            role = "suspect"
        elif fold in lex.VICTIM_WORDS or fold.startswith(lex.VICTIM_PREFIXES):
            role = "victim"
            # "a Dartford man who assaulted a woman": after the person, a deed in the
            # active voice is theirs; only "was assaulted" makes them the victim.
            # "Ashford pensioners targeted by rogue traders" is passive too.
            passive = words[index - 1].fold in lex.PASSIVE or (
                index + 1 < len(words) and words[index + 1].fold == "by"
            )
            if index > last and fold in lex.DEEDS and not passive:
                role = "suspect"
        else:
            continue
        distance = first - index if index < first else index - last
        if best is None or distance < best[0]:
            best = (distance, role)
    return best[1] if best else None
