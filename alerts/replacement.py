"""Authoring safety: is a file that names an existing advisory's URL a copy made into a
new advisory (the author forgot to change ``url:``), rather than an update of it?

An update ("missing man found", a corrected time) keeps most of its title or text, or
comes within days. A copy turned into another advisory changes the title *and* the text
entirely *and* its date moves by more than :data:`DATE_MOVED`. Only then is it held, as
an advisory of its own, for the operator (``alerts advisories release ID``), and the old
one is left as it was.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

#: A date moved by more than this is not the same story told again.
DATE_MOVED = timedelta(days=3)
#: Word overlap (Jaccard) at or under which two texts are "entirely different".
DIFFERENT = 0.2
_WORD = re.compile(r"[^\W\d_]{3,}")
#: Words every advisory uses: sharing them says nothing.
_COMMON = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "have",
        "has",
        "are",
        "was",
        "were",
        "been",
        "will",
        "would",
        "police",
        "officers",
        "kent",
        "residents",
        "advice",
        "appeal",
        "people",
        "anyone",
        "information",
        "please",
        "call",
        "report",
    ]
)


def words(text: str) -> frozenset[str]:
    """The words that say what a text is about (3 letters or more, lower case)."""
    return frozenset(word for word in _WORD.findall(text.lower()) if word not in _COMMON)


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the two texts' words: 1 the same words, 0 none shared."""
    left, right = words(a), words(b)
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def looks_like_replacement(
    old_title: str,
    old_text: str,
    old_date: datetime,
    new_title: str,
    new_text: str,
    new_date: datetime,
) -> bool:
    """True when the new version shares (almost) no words of the old title, none of its
    text, and is dated more than :data:`DATE_MOVED` away: another advisory under an old URL."""
    return (
        abs(new_date - old_date) > DATE_MOVED
        and overlap(old_title, new_title) <= DIFFERENT
        and overlap(old_text, new_text) <= DIFFERENT
    )
