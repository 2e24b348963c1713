"""What makes a change to an advisory material: worth telling a subscriber "Updated".

Only the words a reader reads and the places its links lead: the title, summary and
text after normalising whitespace (a re-wrapped paragraph, a trailing space), markup
(``<b>`` to ``<strong>``, a class added, a paragraph split into a ``<br>``) and tracking
parameters in links (``utm_*`` and the like, which a CMS rewrites on every render).
A changed link target, or a changed number in the text, is material: that is how a
phishing edit looks.
"""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters that say who sent a reader, not where the link leads.
TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_ga|_gl|yclid|igshid|ref_src|cmpid|icid)$",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
#: Elements that break a line: between them words are apart; inline ones (b, a, span) join.
_BREAKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)


def strip_tracking(url: str) -> str:
    """``url`` without tracking parameters (the rest, and their order, kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Reader(HTMLParser):
    """The words of an HTML fragment, and where its links lead."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self.urls: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        if tag in _BREAKS:
            self.words.append(" ")  # <p>a</p><p>b</p> reads "a b", as "a<br>b" does
        self.urls += [
            strip_tracking(value.strip())
            for name, value in attrs
            if name in ("href", "src") and value
        ]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1
        if tag in _BREAKS:
            self.words.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.words.append(data)


def material_text(title: str, summary: str, body_html: str) -> str:
    """The advisory as a reader meets it, normalised: one string per version."""
    reader = _Reader()
    reader.feed(body_html or "")
    reader.close()
    text = "".join(reader.words)
    words = [_SPACE.sub(" ", part).strip() for part in (title, summary, text)]
    return json.dumps([*words, reader.urls], ensure_ascii=False)


def material_hash(title: str, summary: str, body_html: str) -> str:
    """Equal for two versions exactly when :func:`material_text` is."""
    return hashlib.sha256(material_text(title, summary, body_html).encode()).hexdigest()
