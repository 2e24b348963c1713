"""Turning untrusted text into safe HTML, plain text and header-safe strings.

Everything from outside (advisory files, upstream feeds, form input) passes through
here before it reaches an email, a feed or a page.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto", "tel"}

# Characters XML 1.0 forbids, plus the C1 controls and U+2028/9 that break headers and JS,
# and lone surrogates (YAML "\ud800" escapes make them), which no encoder will write.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_MARKDOWN = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    "table"
)
# markdown-it leaves a link it deems unsafe as its raw source text, so
# "[Click](javascript:...)" would reach readers as words. Let it make the link and let
# the sanitiser drop the href: the reader sees "Click", and no script URL anywhere.
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]


def strip_control(text: str) -> str:
    """Remove characters that are illegal in XML and unsafe in mail (keeps tab, CR, LF)."""
    return _CONTROL.sub("", text)


def one_line(text: str, limit: int | None = None) -> str:
    """Collapse all whitespace, line breaks included, to single spaces: safe for a header,
    a title or a subject. Cut to ``limit`` characters with an ellipsis."""
    # Split first: U+2028/9 separate lines like CR LF do, so they become spaces too.
    text = " ".join(part for part in (strip_control(p) for p in text.split()) if part)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


# The HTML parser under nh3 takes time quadratic in nesting depth: 20,000 unclosed <ul>
# take seconds, a 2 MB file of them would take an hour. No real advisory nests this deep.
MAX_DEPTH = 100
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*>")
# Elements that close themselves or that the parser closes when the next one starts.
_NO_DEPTH = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    "p", "li", "dt", "dd", "option", "tr", "td", "th",
})  # fmt: skip


def _too_deep(fragment: str) -> bool:
    """An upper bound on nesting depth, found in one linear pass, above MAX_DEPTH."""
    depth = 0
    for match in _TAG.finditer(fragment):
        if match.group(2).lower() in _NO_DEPTH or match.group(0).endswith("/>"):
            continue
        depth = max(0, depth - 1) if match.group(1) else depth + 1
        if depth > MAX_DEPTH:
            return True
    return False


def _as_plain_paragraphs(fragment: str) -> str:
    """Markup too deep to parse safely in time: keep the words, drop every tag."""
    text = html.unescape(re.sub(r"<[/!?A-Za-z][^>]*>?", " ", fragment))
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p)


def sanitise_html(fragment: str) -> str:
    """Keep only harmless markup: no script or style, no event handlers, no
    ``javascript:`` or ``data:`` URLs; links get ``rel="noopener noreferrer"``.
    Absurdly deep markup is reduced to plain paragraphs (see MAX_DEPTH)."""
    fragment = strip_control(fragment)
    if _too_deep(fragment):
        return _as_plain_paragraphs(fragment)
    return nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def render_markdown(source: str) -> str:
    """Markdown (CommonMark, tables, inline HTML) to sanitised HTML."""
    return sanitise_html(_MARKDOWN.render(strip_control(source)))


class _TextWriter(HTMLParser):
    """Sanitised HTML to readable plain text: paragraphs, lists, links as 'text (url)'."""

    _BLOCKS = frozenset(
        {"p", "div", "blockquote", "pre", "table", "tr", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: list[str | None] = []
        self._link_text: list[str] = []
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"td", "th"}:
            self.parts.append(" ")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
            self._link_text.append("")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._href:
            href = self._href.pop()
            text = self._link_text.pop().strip()
            if href and href.startswith(("http", "mailto:", "tel:")):
                target = href.removeprefix("mailto:").removeprefix("tel:")
                if target != text:
                    self.parts.append(f" ({href})" if href.startswith("http") else f" ({target})")

    def handle_data(self, data: str) -> None:
        if not self._pre:
            data = re.sub(r"\s+", " ", data)
        if self._link_text:
            self._link_text[-1] += data
        self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = [line.strip() if not self._pre else line.rstrip() for line in raw.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str) -> str:
    """Plain text with the same content as a (sanitised) HTML fragment."""
    writer = _TextWriter()
    writer.feed(fragment)
    writer.close()
    return writer.text()


def decode_entities(value: str) -> str:
    """``&amp;`` -> ``&`` and friends, as advisory front matter carries them."""
    return html.unescape(value)


def plain_text(text: str) -> str:
    """Untrusted text (a title, a summary) as plain text on one line: markup is dropped,
    not shown, and entities are decoded. The one text form of a title, on the web, in
    feeds (many readers treat an RSS title as HTML) and in mail alike."""
    return one_line(html_to_text(sanitise_html(text or "")))


def cut_at_word(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters: cut at the last space that
    fits, with an ellipsis (a single word longer than that is cut where it must be)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-–—") + "…"
