"""Rendering variants: Jinja2 templates (HTML and plain text) with the CSS inlined by
premailer, a batch's variants in one premailer pass. It runs once per variant, never per
subscriber: the personal links are placeholders here, filled into the finished message
by :mod:`alerts.message`.

The placeholders carry a random nonce, so advisory text cannot contain (or forge) one.

It runs past 500 lines because the batched premailer pass (which reproduces premailer's
output byte for byte, tested against it) sits beside the renderer it serves.
"""

from __future__ import annotations

import logging
import re
import secrets
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import TemplateError
from lxml import etree
from premailer import Premailer

from alerts.areas import Gazetteer
from alerts.config import DigestsConfig, MailSettings
from alerts.digest.advice import advice_of
from alerts.digest.plan import Entry, Variant
from alerts.errors import ConfigError
from alerts.templating import find_template, template_environment
from alerts.text import and_list, cut_at_word, html_to_text, one_line, plain_text, sanitise_html
from alerts.types import Advisory, DigestKind, RenderedDigest

HTML_TEMPLATE = "digest.html"
TEXT_TEMPLATE = "digest.txt"
STYLESHEET = "digest.css"
RESPONSIVE_STYLESHEET = "responsive.css"
#: The layout every email extends (this one's and the subscription emails').
LAYOUT_TEMPLATE = "_layout.html"
TEMPLATES = (HTML_TEMPLATE, TEXT_TEMPLATE, STYLESHEET, RESPONSIVE_STYLESHEET, LAYOUT_TEMPLATE)
#: Gmail clips a message whose HTML passes 102 KB; stay clear of it.
HTML_LIMIT = 100_000
#: The personal values a message carries in its body (see alerts.tokens.PersonalLinks).
PERSONAL = ("unsubscribe_url", "manage_url")
TEXT_WIDTH = 76
SUMMARY_LIMIT = 600
#: What an inbox shows after the subject; cut at a word.
PREHEADER_LIMIT = 140
#: Titles listed (as links) after the advisories shown in full; the rest are on the web.
MORE_LIMIT = 30
#: The same for a gathered message (alerts past the hourly limit): each title and link.
GATHERED_MORE_LIMIT = 100
#: Advisories whose rendered items a renderer keeps (a run's candidates, normally).
ITEM_CACHE = 1000
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>\\]+$", re.IGNORECASE)


class EmailTemplateError(ConfigError):
    """The email templates are missing or broken."""


def _inliner() -> Premailer:
    """Network and file access are off (templates never load anything remote) and
    cssutils' warnings are silenced."""
    return Premailer(
        None,
        base_url=None,
        disable_link_rewrites=True,
        allow_network=False,
        allow_loading_external_files=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        keep_style_tags=False,
        remove_classes=False,
        # Keep width="600" on the container: Outlook sizes tables by the attribute.
        disable_basic_attributes=["width", "height"],
    )


def inline_css(html: str) -> str:
    """Inline the stylesheet into style attributes; the ``data-premailer="ignore"``
    style block (@media rules) is kept as it is."""
    inlined: str = _inliner().transform(html, pretty_print=True)
    return inlined


def inline_css_all(documents: Sequence[str]) -> list[str]:
    """:func:`inline_css` of each document, byte for byte, in one premailer pass per
    :data:`INLINE_BATCH` documents that share their stylesheet.

    premailer re-serialises every property of a stylesheet on each call (two thirds of
    a call's time for our digest.css), so a run's variants are inlined together: their
    pages go under one element, the stylesheet is read from the first page only (the
    others' copies are marked ignored, then given the first's result: removed, or cut to
    the rules that could not be inlined), and each page is serialised as premailer would.
    A document this cannot reproduce exactly goes through :func:`inline_css` alone."""
    results: list[str] = []
    for start in range(0, len(documents), INLINE_BATCH):
        results += _inline_batch(documents[start : start + INLINE_BATCH])
    return results


def _inline_batch(documents: Sequence[str]) -> list[str]:
    results: dict[int, str] = {}
    groups: dict[tuple[str | None, ...], list[tuple[int, _Page]]] = {}
    for index, html in enumerate(documents):
        page = _Page.parse(html)
        if page is None:
            results[index] = inline_css(html)
        else:
            groups.setdefault(tuple(style.text for style in page.styles), []).append((index, page))
    for group in groups.values():
        for (index, _), html in zip(group, _inline_pages([page for _, page in group]), strict=True):
            results[index] = html
    return [results[index] for index in range(len(documents))]


#: Documents parsed and inlined in one premailer pass. Ten already make premailer's
#: per-call cost small; more hold more parsed trees at once (about 0.1 MB each).
INLINE_BATCH = 10


@dataclass
class _Page:
    """A parsed document, as premailer parses a string, and its style elements that
    premailer inlines (not ``media="print"`` and the like, not ``data-premailer="ignore"``)."""

    root: etree._Element
    doctype: str | None
    styles: list[etree._Element]

    @classmethod
    def parse(cls, html: str) -> _Page | None:
        """None for a document that must be inlined on its own: without a <head> (premailer
        adds one), with comments beside <html> (only a whole tree serialises them),
        with no stylesheet (nothing to share), a ``data-premailer`` value premailer
        warns about, or structural pseudo-classes (``:first-child``: <html> would have
        siblings in a batch)."""
        stripped = html.strip()
        tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
        root = tree.getroot()
        if root is None or root.getprevious() is not None or root.getnext() is not None:
            return None
        if root.find(".//head") is None:
            return None
        styles: list[etree._Element] = []
        for style in root.iter("style"):
            media = style.get("media")
            if media and media not in ("all", "screen"):
                continue
            marker = style.get(Premailer.attribute_name)
            if marker == "ignore":
                continue
            if marker or "-child" in (style.text or ""):
                return None
            styles.append(style)
        if not styles:
            return None
        doctype: str = tree.docinfo.doctype  # type: ignore[union-attr]  # lxml-stubs lack DocInfo.doctype
        return cls(root, doctype if stripped.startswith(doctype) else None, styles)


def _inline_pages(pages: Sequence[_Page]) -> list[str]:
    first, rest = pages[0], pages[1:]
    batch = etree.Element("batch")
    for page in pages:
        batch.append(page.root)
    for page in rest:
        for style in page.styles:
            style.set(Premailer.attribute_name, "ignore")  # premailer drops the mark
    _inliner().transform(batch)
    for page in rest:
        for style, done in zip(page.styles, first.styles, strict=True):
            parent = style.getparent()
            if done.getparent() is None and parent is not None:
                parent.remove(style)
            else:
                style.text = done.text
    out: list[str] = []
    for page in pages:
        batch.remove(page.root)
        if page.doctype is None:
            html = etree.tostring(page.root, method="html", pretty_print=True, encoding="unicode")
        else:
            html = etree.tostring(
                page.root,
                method="html",
                pretty_print=True,
                encoding="unicode",
                doctype=page.doctype,
            )
        out.append(str(html))
    return out


class DigestRenderer:
    """Renders variants with the templates in ``<templates>/email``. Checks them at
    construction, so a broken template stops a run before anything is queued."""

    def __init__(self, mail: MailSettings, digests: DigestsConfig, gazetteer: Gazetteer):
        self.mail = mail
        self.digests = digests
        self.gazetteer = gazetteer
        folders = mail.template_folders("email")
        files: dict[str, Path] = {}
        for name in TEMPLATES:
            file = find_template(folders, name)
            if file is None:
                raise EmailTemplateError(
                    f"missing email template {name}",
                    where=str(folders[0]),
                    hint="set 'templates:' in config.yaml to a folder holding email/"
                    + ", email/".join(TEMPLATES),
                )
            files[name] = file
        env = template_environment(folders)  # autoescapes the .html template, not the .txt
        try:
            self._html = env.get_template(HTML_TEMPLATE)
            self._text = env.get_template(TEXT_TEMPLATE)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            broken = getattr(exc, "filename", None) or folders[0]
            raise EmailTemplateError(
                f"broken email template: {exc}", where=f"{broken}{':' + str(line) if line else ''}"
            ) from None
        self._css = files[STYLESHEET].read_text(encoding="utf-8")
        self._responsive = files[RESPONSIVE_STYLESHEET].read_text(encoding="utf-8")
        self._items: dict[tuple[int, bool], tuple[Advisory, dict[str, Any]]] = {}

    # -- words --------------------------------------------------------------------

    def area_names(self, areas: Sequence[str], limit: int = 3) -> str:
        """'Medway', 'Medway and Chatham', 'Ashford, Dover and 2 more areas'."""
        names = [self.gazetteer.name_of(slug) for slug in areas]
        if len(names) > limit:
            shown = names[: limit - 1]
            return f"{', '.join(shown)} and {len(names) - len(shown)} more areas"
        if len(names) <= 1:
            return names[0] if names else self.gazetteer.root.name
        return f"{', '.join(names[:-1])} and {names[-1]}"

    def subject(self, variant: Variant, advisories: Mapping[int, Advisory]) -> str:
        """'3 new alerts for Medway', 'Urgent: <title>', or the title of a single alert."""
        if variant.kind.single:
            entry = variant.entries[0]
            title = plain_text(advisories[entry.advisory_id].title)
            prefix = "Urgent: " if variant.kind is DigestKind.URGENT else ""
            prefix += "Updated: " if entry.updated else ""
            return cut_at_word(prefix + title, 150)
        updated = sum(entry.updated for entry in variant.entries)
        new = len(variant.entries) - updated
        places = self.area_names(variant.areas)
        if variant.kind is DigestKind.GATHERED:
            return one_line(f"{_count(len(variant.entries), 'more alert')} for {places}", limit=150)
        if not updated:
            counted = _count(new, "new alert")
        elif not new:
            counted = _count(updated, "updated alert")
        else:
            counted = f"{new} new and {updated} updated alerts"
        return one_line(f"{counted} for {places}", limit=150)

    # -- rendering ----------------------------------------------------------------

    def render(self, variant: Variant, advisories: Mapping[int, Advisory]) -> RenderedDigest:
        """HTML and text for ``variant``; ``advisories`` holds at least its entries."""
        [rendered] = self.render_all([variant], advisories)
        return rendered

    def render_all(
        self, variants: Sequence[Variant], advisories: Mapping[int, Advisory]
    ) -> list[RenderedDigest]:
        """:meth:`render` of each variant, their CSS inlined together (premailer's cost is
        mostly reading the stylesheet, the same for every variant, once per call)."""
        rendered: list[RenderedDigest] = []
        for start in range(0, len(variants), INLINE_BATCH):
            rendered += self._render_batch(variants[start : start + INLINE_BATCH], advisories)
        return rendered

    def _render_batch(
        self, variants: Sequence[Variant], advisories: Mapping[int, Advisory]
    ) -> list[RenderedDigest]:
        contexts = []
        for variant in variants:
            nonce = secrets.token_hex(8)
            placeholders = {name: f"__{name}_{nonce}__" for name in PERSONAL}
            contexts.append(
                self._context(variant, advisories, placeholders, full=variant.kind.single)
            )
        htmls = self._render_html(contexts)
        # A very long advisory: show its summary and link to the whole text.
        too_long = [
            i for i, html in enumerate(htmls) if len(html) > HTML_LIMIT and contexts[i]["full"]
        ]
        for i in too_long:
            placeholders = {name: contexts[i][name] for name in PERSONAL}
            contexts[i] = self._context(variants[i], advisories, placeholders, full=False)
        for i, html in zip(
            too_long, self._render_html([contexts[i] for i in too_long]), strict=True
        ):
            htmls[i] = html
        return [
            RenderedDigest(
                key=variant.key,
                kind=variant.kind,
                subject=context["subject"],
                html=html,
                text=_tidy_text(self._text.render(context)),
                areas=variant.areas,
                advisory_ids=tuple(variant.advisory_ids),
                forwardable=variant.forwardable,
                placeholders={}
                if variant.forwardable
                else {name: context[name] for name in PERSONAL},
            )
            for variant, context, html in zip(variants, contexts, htmls, strict=True)
        ]

    def _render_html(self, contexts: Sequence[dict[str, Any]]) -> list[str]:
        # ASCII only (numeric character references) and short lines: the part can then
        # travel as 7bit, and personal links are filled in without re-encoding it.
        return [
            _fold_long_lines(html.encode("ascii", "xmlcharrefreplace").decode("ascii"))
            for html in inline_css_all([self._html.render(context) for context in contexts])
        ]

    def _context(
        self,
        variant: Variant,
        advisories: Mapping[int, Advisory],
        placeholders: dict[str, str],
        *,
        full: bool,
    ) -> dict[str, Any]:
        mail = self.mail
        base = mail.site.base_url
        limit = 1 if variant.kind.single else self.digests.max_items
        shown, rest = variant.entries[:limit], variant.entries[limit:]
        # A single alert is shared by everyone it goes to: it names the areas it concerns.
        areas = variant.areas or tuple(advisories[shown[0].advisory_id].areas)
        archive_links = [
            {"name": self.gazetteer.name_of(slug), "url": f"{base}/areas/{slug}"} for slug in areas
        ]
        fallback = archive_links[0]["url"] if archive_links else f"{base}/"
        items = {
            e.advisory_id: self._item(e, advisories[e.advisory_id], fallback, full=full)
            for e in shown
        }
        subject = self.subject(variant, advisories)
        places = self.area_names(areas)
        more_limit = GATHERED_MORE_LIMIT if variant.kind is DigestKind.GATHERED else MORE_LIMIT
        if variant.kind.single:
            advisory = advisories[shown[0].advisory_id]
            heading = cut_at_word(plain_text(advisory.title), 300)
            sections: list[dict[str, Any]] = [{"title": None, "items": list(items.values())}]
            preheader = (
                cut_at_word(plain_text(advisory.summary) or advisory.body_text, PREHEADER_LIMIT)
                or heading
            )
        else:
            heading = (
                subject
                if variant.kind is DigestKind.GATHERED
                else f"Your {variant.kind.value} alerts for {places}"
            )
            sections = [
                {"title": title, "items": [items[e.advisory_id] for e in group]}
                for title, group in self._sections(variant, shown, advisories)
            ]
            titles = "; ".join(plain_text(advisories[e.advisory_id].title) for e in shown)
            preheader = cut_at_word(f"{subject}: {titles}", PREHEADER_LIMIT)
        reason = {
            DigestKind.DAILY: f"You get this daily summary because you subscribed to alerts for {places}.",
            DigestKind.WEEKLY: f"You get this weekly summary because you subscribed to alerts for {places}.",
            DigestKind.IMMEDIATE: f"You get each alert for your areas as it is published. This one concerns {places}.",
            DigestKind.URGENT: f"Urgent alerts go out at once to everyone subscribed to the areas they concern: {places}.",
            DigestKind.GATHERED: (
                f"You get alerts for {places} as they are published, up to {self.digests.alerts_per_hour}"
                " an hour; these came after that, so they are gathered in one message."
            ),
        }[variant.kind]
        if variant.forwardable:
            reason = f"This is the {mail.site.name} service" + (
                "." if variant.kind.single else f" for {places}."
            )
        return {
            "lang": mail.site.language,
            "site_name": mail.site.name,
            "publisher": mail.site.publisher,
            "kind": variant.kind.value,
            "single": variant.kind.single,
            "full": full,
            "subject": subject,
            "heading": heading,
            "preheader": preheader,
            "sections": sections,
            "more": [
                self._item(e, advisories[e.advisory_id], fallback, full=False)
                for e in rest[:more_limit]
            ],
            "more_count": len(rest),
            "archive_links": archive_links,
            "reason": reason,
            "reason_text": _wrap(reason),
            "forwardable": variant.forwardable,
            # The areas this message is about, filled in on the form for whoever it is forwarded to.
            "subscribe_url": f"{base}/subscribe"
            + (f"?area={quote(','.join(areas), safe=',')}" if areas else ""),
            "places": places,
            "privacy_url": f"{base}/privacy",
            # A forwardable copy has no personal link: its owner asks for one by email.
            "manage_request_url": f"{base}/manage",
            "css": self._css,
            "responsive_css": self._responsive,
            **placeholders,
        }

    def _item(
        self, entry: Entry, advisory: Advisory, fallback_url: str, *, full: bool
    ) -> dict[str, Any]:
        url = advisory.url if _SAFE_URL.match(advisory.url or "") else fallback_url
        return {**self._advisory_item(advisory, full), "url": url, "updated": entry.updated}

    def _advisory_item(self, advisory: Advisory, full: bool) -> dict[str, Any]:
        """What an item says of its advisory alone. A run renders the same advisory in
        many variants, so this (sanitising, wrapping) is done once per advisory; the
        cache holds the advisory itself, so a different object is never taken for it."""
        cached = self._items.get((advisory.id, full))
        if cached is not None and cached[0] is advisory:
            return cached[1]
        # The web's text form of the title and summary: markup dropped, entities decoded.
        title = cut_at_word(plain_text(advisory.title), 300)
        summary = cut_at_word(plain_text(advisory.summary) or advisory.body_text, SUMMARY_LIMIT)
        body_html = sanitise_html(advisory.body_html) if full else ""
        advice = advice_of(advisory.body_text, advisory.extra)
        item = {
            "title": title,
            "title_text": _wrap(title),
            "when": self._when(advisory.published_at),
            "areas": ", ".join(self.gazetteer.name_of(slug) for slug in advisory.areas),
            "urgent": advisory.priority.value == "urgent",
            "summary": summary,
            "summary_text": _wrap(summary),
            # What to do, before the story (see alerts.digest.advice for the rule).
            "advice": advice,
            "advice_text": _wrap("\n\n".join(advice)),
            "body_html": body_html,
            # From the sanitised HTML, so the text part says exactly what the HTML says.
            "body_text": _wrap(html_to_text(body_html)) if full else "",
        }
        if len(self._items) >= ITEM_CACHE:
            self._items.clear()
        self._items[(advisory.id, full)] = (advisory, item)
        return item

    def _sections(
        self, variant: Variant, entries: Sequence[Entry], advisories: Mapping[int, Advisory]
    ) -> list[tuple[str, list[Entry]]]:
        """Group a digest's entries under the area each advisory concerns (a Medway
        advisory sits under "Medway" in a Chatham subscriber's digest, not under
        "Chatham"), newest first in each; force-wide advice (about the whole force area)
        in a section of its own, last."""
        root = self.gazetteer.root
        groups: dict[tuple[str, ...], list[Entry]] = {}
        force_wide: list[Entry] = []
        for entry in entries:
            areas = set(advisories[entry.advisory_id].areas)
            if root.slug in areas or not areas:
                force_wide.append(entry)
                continue
            groups.setdefault(self._group(variant.areas, areas), []).append(entry)
        sections = [
            (and_list(self.gazetteer.names_of(slugs)), group) for slugs, group in groups.items()
        ]
        sections.sort(key=lambda section: section[0])
        if force_wide:
            sections.append((f"Across {root.name}", force_wide))
        return sections

    def _group(self, subscribed: Sequence[str], areas: set[str]) -> tuple[str, ...]:
        """The section an advisory goes in: the areas it concerns;
        for a subscriber to the whole force, the district it concerns (a force-wide
        digest reads by district, not by village)."""
        gazetteer = self.gazetteer
        known = sorted(areas)
        if any(
            gazetteer.node(slug).kind.value == "force" for slug in subscribed if slug in gazetteer
        ):
            area = known[0]
            chain = [area, *gazetteer.ancestors(area)] if area in gazetteer else [area]
            return (chain[-2] if len(chain) >= 2 else chain[-1],)
        return tuple(known)

    def _when(self, moment: datetime) -> str:
        local = moment.astimezone(self.mail.tz)
        return f"{local:%H:%M}, {local:%A} {local.day} {local:%B %Y}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _wrap(text: str) -> str:
    """Paragraphs wrapped at 76 columns; long words (URLs) are never broken."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(
        "\n".join(
            textwrap.fill(line, TEXT_WIDTH, break_long_words=False, break_on_hyphens=False) or ""
            for line in paragraph.splitlines()
        )
        for paragraph in paragraphs
    )


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _fold_long_lines(html: str, width: int = 500) -> str:
    """Break lines longer than ``width`` at spaces (where HTML does not care), outside
    ``<pre>``. A line with no space to break at is left; the message then picks a
    transfer encoding that copes with it."""
    out: list[str] = []
    depth = 0
    for line in html.split("\n"):
        lower = line.lower()
        opened, closed = lower.count("<pre"), lower.count("</pre")
        if len(line) > width and not depth and not opened:
            out.extend(_break(line, width))
        else:
            out.append(line)
        depth = max(0, depth + opened - closed)
    return "\n".join(out)


def _break(line: str, width: int) -> list[str]:
    pieces: list[str] = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        if cut <= 0:
            cut = line.find(" ", width)
            if cut < 0:
                break
        pieces.append(line[:cut])
        line = line[cut + 1 :]
    pieces.append(line)
    return pieces
