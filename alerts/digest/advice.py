"""What an advisory tells its readers to do, to show before the rest of it.

Police releases bury the advice: in the seed it is paragraph 7 of 13 ("If you receive
such a call, end it immediately, wait five minutes…"), after the story and before the
quotes. The rule, in order:

1. The front matter's ``advice:`` (a string, or a list of paragraphs), when given: the
   editor's own words win.
2. Otherwise, the body's paragraphs that address the reader with an instruction: a
   paragraph whose first sentence opens with an imperative (``Call``, ``Report``,
   ``Never``, ``Do not``, ``Make sure`` …) or with a condition on the reader followed by
   one ("If you receive such a call, end it …", "If possible, call …", "Anyone with
   information should call …"). Quotations (a paragraph opening with a quote mark) are
   the speaker's words, not ours to lift, and are left where they are.

At most :data:`MAX_PARAGRAPHS` paragraphs, in their order; none when nothing matches
(an appeal that asks nothing of the reader shows no advice box).
"""

from __future__ import annotations

import re
from typing import Any

from alerts.text import plain_text

MAX_PARAGRAPHS = 2
#: A paragraph this long is a story, not an instruction.
MAX_LENGTH = 600
#: Verbs (and negatives) that open an instruction to the reader.
IMPERATIVES = frozenset(
    [
        "avoid",
        "be",
        "call",
        "check",
        "contact",
        "do",
        "don't",
        "end",
        "hang",
        "ignore",
        "keep",
        "lock",
        "make",
        "never",
        "phone",
        "remember",
        "report",
        "share",
        "stay",
        "stop",
        "take",
        "tell",
        "think",
        "use",
        "visit",
        "wait",
    ]
)
_CONDITION = re.compile(
    r"^(if you\b|if possible\b|if anyone\b|if it\b|when you\b|anyone (?:who|with|that)\b)", re.I
)
_QUOTE = re.compile(r"^[\"'‘“]")
_SHOULD = re.compile(r"\b(?:should|must|is asked to|are asked to|please)\b", re.I)


def advice_of(body_text: str, extra: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The paragraphs of advice for an advisory (plain text), by the rule above."""
    given = (extra or {}).get("advice")
    if isinstance(given, str) and given.strip():
        return tuple(_paragraphs(given))[:MAX_PARAGRAPHS]
    if isinstance(given, list):
        return tuple(plain_text(str(part)) for part in given if str(part).strip())[:MAX_PARAGRAPHS]
    found = [paragraph for paragraph in _paragraphs(body_text) if is_advice(paragraph)]
    return tuple(found[:MAX_PARAGRAPHS])


def is_advice(paragraph: str) -> bool:
    """Whether one paragraph tells the reader what to do (see the module's rule)."""
    if not paragraph or len(paragraph) > MAX_LENGTH or _QUOTE.match(paragraph):
        return False
    first = re.split(r"(?<=[.!?])\s", paragraph, maxsplit=1)[0]
    if _opens_with_imperative(first):
        return True
    condition = _CONDITION.match(first)
    if condition is None:
        return False
    # The clause after the condition: "If you receive such a call, end it …".
    rest = first.split(",", 1)[1] if "," in first else first[condition.end() :]
    return _opens_with_imperative(rest) or bool(_SHOULD.search(rest))


def _opens_with_imperative(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.lower().replace("’", "'"))
    return bool(words) and words[0] in IMPERATIVES and not (words[0] == "be" and len(words) < 2)


def _paragraphs(text: str) -> list[str]:
    return [
        " ".join(part.split())
        for part in re.split(r"\n\s*\n", plain_text_keep_breaks(text))
        if part.strip()
    ]


def plain_text_keep_breaks(text: str) -> str:
    """Plain text with its paragraph breaks kept (``plain_text`` makes one line)."""
    return "\n\n".join(plain_text(part) for part in re.split(r"\n\s*\n", text or ""))
