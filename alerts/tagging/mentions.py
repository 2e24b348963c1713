"""Finding the places a text names: every name of the gazetteer, as written (any
apostrophe, hyphen or space, "St" or "Saint"), with the words around it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from alerts.areas import Gazetteer, OutsideName, PlaceName, fold_word, words_of

# Where a sentence ends: . ! ? then a capital, or a blank line.
_SENTENCE_END = re.compile(r"[.!?]['\"’”)]*\s+(?=[A-Z0-9'\"‘“(])|\n\s*\n|\n(?=\s*[-*•])")


_POSSESSIVE = ("'s", "’s", "'S", "’S")
# Words of one name are joined by spaces, hyphens or a full stop ("St. Mary's").
_JOINS = re.compile(r"\.?[ \t\-‐–]+|\.")


@dataclass(frozen=True)
class Word:
    text: str
    fold: str
    start: int
    end: int
    #: The text between the previous word and this one (", " or "-" or " ").
    gap: str

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper() or self.text[:1].isdigit()


@dataclass(frozen=True)
class Sentence:
    """One sentence of one part of an advisory, as words."""

    part: str  # "title", "summary" or "text"
    index: int  # 0 for the first sentence of the part
    paragraph: int  # 0 for the first paragraph of the part
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Mention:
    """A place named in a sentence: words ``first`` to ``last`` (inclusive)."""

    sentence: Sentence
    first: int
    last: int
    place: PlaceName

    @property
    def written(self) -> str:
        words = self.sentence.words
        return self.sentence.text[words[self.first].start : words[self.last].end]

    def quote(self, before: int = 7, after: int = 7) -> str:
        """The words around the mention, as the reader would quote them."""
        words = self.sentence.words
        start = max(0, self.first - before)
        end = min(len(words) - 1, self.last + after)
        text = " ".join(self.sentence.text[words[start].start : words[end].end].split())
        lead = "…" if start > 0 else ""
        tail = "…" if end < len(words) - 1 else ""
        return f"{lead}{text}{tail}"


def sentences(part: str, text: str) -> list[Sentence]:
    """``text`` cut into sentences of words (a paragraph break always ends one)."""
    found: list[Sentence] = []
    paragraph = 0
    for block in re.split(r"\n\s*\n", text):
        if not block.strip():
            continue
        start = 0
        pieces = []
        for end in _SENTENCE_END.finditer(block):
            pieces.append(block[start : end.end()])
            start = end.end()
        pieces.append(block[start:])
        for piece in pieces:
            words: list[Word] = []
            previous = 0
            for match in words_of(piece):
                words.append(
                    Word(
                        match.group(),
                        fold_word(match.group()),
                        match.start(),
                        match.end(),
                        piece[previous : match.start()],
                    )
                )
                previous = match.end()
            if words:
                found.append(Sentence(part, len(found), paragraph, piece, tuple(words)))
        paragraph += 1
    return found


def find_mentions(gazetteer: Gazetteer, sentence: Sentence) -> list[Mention]:
    """Every place the sentence names, longest name first at each word ("Tunbridge
    Wells", not "Tunbridge"); names that are somewhere else ("Charing Cross",
    "Stanford-le-Hope") are skipped."""
    return [found for found in _scan(gazetteer, sentence) if isinstance(found, Mention)]


@dataclass(frozen=True)
class OutsideMention:
    """A place outside the force area or another force, named in a sentence: words
    ``first`` to ``last``. A name that is also a place here ("Rainham") is a
    :class:`Mention`, not this."""

    sentence: Sentence
    first: int
    last: int
    name: OutsideName

    @property
    def written(self) -> str:
        words = self.sentence.words
        return self.sentence.text[words[self.first].start : words[self.last].end]


def find_outside(gazetteer: Gazetteer, sentence: Sentence) -> list[OutsideMention]:
    """Every place outside the force area, and every other force, the sentence names
    (a name also a place here is not one: it is found by :func:`find_mentions`)."""
    return [found for found in _scan(gazetteer, sentence) if isinstance(found, OutsideMention)]


def _scan(gazetteer: Gazetteer, sentence: Sentence) -> list[Mention | OutsideMention]:
    words = sentence.words
    names = gazetteer.place_names
    outside = gazetteer.outside_names
    starts = gazetteer.first_words
    shouting = sum(w.text.isupper() for w in words if len(w.text) > 1) > len(words) * 0.6
    found: list[Mention | OutsideMention] = []
    index = 0
    while index < len(words):
        matched = 0
        # Only a word that starts some name can start a mention: most words are skipped here.
        longest = starts.get(words[index].fold, 0)
        if longest == 0 and words[index].text[-2:] in _POSSESSIVE:
            longest = starts.get(words[index].fold[:-1], 0)
        for size in range(min(longest, len(words) - index), 0, -1):
            span = words[index : index + size]
            if any(not _JOINS.fullmatch(w.gap) for w in span[1:]):
                continue
            key = tuple(w.fold for w in span)
            if span[-1].text[-2:] in _POSSESSIVE and key not in names and key not in outside:
                key = (*key[:-1], key[-1][:-1])  # "Maidstone's", "Essex Police's"
            place = names.get(key)
            if place is not None and _written_as_a_name(span, place.name, shouting):
                found.append(Mention(sentence, index, index + size - 1, place))
                matched = size
                break
            elsewhere = outside.get(key)
            if elsewhere is not None and _written_as_a_name(span, elsewhere.name, shouting):
                found.append(OutsideMention(sentence, index, index + size - 1, elsewhere))
                matched = size
                break
            if key in gazetteer.not_places and span[0].capitalised:
                matched = size
                break
        index += matched or 1
    return found


def _written_as_a_name(span: tuple[Word, ...], name: str, shouting: bool) -> bool:
    """A place's name starts with a capital ("in deal" is not Deal) and its capitalised
    words are capitalised as written; a postcode is in capitals."""
    if shouting:
        return True
    name_words = list(words_of(name))
    if len(name_words) != len(span):
        return span[0].capitalised
    for word, name_word in zip(span, name_words, strict=True):
        expected = name_word.group()
        if expected[:1].isupper() and not word.text[:1].isupper() and not word.text[:1].isdigit():
            return False
        if expected.isupper() and len(expected) > 1 and not word.text.isupper():
            return False
    return True
