"""Rendering: once per variant, never per subscriber; mail that reads well everywhere
(table layout, 600px, narrow screens, dark mode, contrast, no remote images), under
Gmail's clipping size, and harmless whatever the advisory holds."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.digest import EmailTemplateError, queue_digests, render
from alerts.digest.plan import Entry, Variant
from alerts.digest.render import DigestRenderer
from alerts.templating import template_environment
from alerts.text import plain_text
from alerts.types import AreaKind, DigestKind, Frequency
from tests.support import NOW
from tests.support.digests import (
    DAY,
    HOSTILE_BODY_HTML,
    HOSTILE_TITLE,
    HOUR,
    advisory,
    built,
    parts,
    save,
    subscribe,
    subscribe_many,
)
from tests.support.sections import Stages, make_stages


@pytest.fixture
def premailer_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the documents the renderer has premailer inline (it still runs for real)."""
    calls: list[int] = []
    real = render.inline_css_all

    def counting(documents: Sequence[str]) -> list[str]:
        calls.extend(len(html) for html in documents)
        return real(documents)

    monkeypatch.setattr(render, "inline_css_all", counting)
    return calls


def test_premailer_runs_once_per_variant_for_1000_subscribers_over_13_areas(
    stages: Stages, premailer_calls: list[int]
) -> None:
    districts = [n.slug for n in stages.gazetteer if n.kind is AreaKind.DISTRICT]
    assert len(districts) == 13
    frequencies = ["daily", "weekly", "immediate"]
    subscribe_many(
        stages, 1000, lambda i: [districts[i % 13]], lambda i: frequencies[i % 3], at=NOW - DAY
    )
    for slug in districts:
        save(stages, advisory(f"news-{slug}", areas=[slug]))
    save(stages, advisory("force-wide", areas=["kent"]))

    daily = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    weekly = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.WEEKLY, now=NOW
    )
    immediate = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )

    # One digest per area set for daily and weekly; immediate: one message per advisory
    # (its own district's and the force-wide one), the same for everyone who gets it.
    assert (daily.messages, weekly.messages, immediate.messages) == (334, 333, 2 * 333)
    assert (daily.digests, weekly.digests, immediate.digests) == (13, 13, 14)
    assert len(premailer_calls) == 13 + 13 + 14
    # A second run has nothing new, renders nothing.
    queue_digests(
        stages.mail,
        stages.digests,
        stages.store,
        stages.gazetteer,
        Frequency.DAILY,
        now=NOW + DAY,
    )
    assert len(premailer_calls) == 40


def test_a_variant_rendered_in_an_earlier_batch_is_not_rendered_again(
    stages: Stages, premailer_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts.digest import queue

    monkeypatch.setattr(queue, "BATCH", 7)
    subscribe_many(stages, 30, lambda i: ["medway"], lambda i: "daily", at=NOW - DAY)
    save(stages, advisory("news"))
    report = queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    assert (report.messages, report.digests, len(premailer_calls)) == (30, 1, 1)


def _digest_html(stages: Stages, count: int = 3, **kwargs: Any) -> tuple[str, str]:
    subscribe(stages, "jane@example.org", ["medway"], **kwargs)
    for i in range(count):
        save(
            stages,
            advisory(
                f"news-{i}", published=NOW - (i + 2) * HOUR, summary=f"Summary £{i} “quoted”."
            ),
        )
    save(stages, advisory("force-wide", areas=["kent"]))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, message)] = built(stages)
    return parts(message)


def test_html_is_a_600px_table_layout_readable_at_320px_with_dark_mode(stages: Stages) -> None:
    _, html = _digest_html(stages)
    assert '<html lang="en-GB"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'role="presentation"' in html and 'width="600"' in html and "max-width:600px" in html
    style = "".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.S))
    assert "@media only screen and (max-width: 620px)" in style
    assert "@media (prefers-color-scheme: dark)" in style
    assert re.search(r"<h1[^>]*>Your daily alerts for Medway</h1>", html)
    assert "<h2" in html and "<h3" in html
    # Inlined: the elements carry their styles for clients that drop <style>.
    assert re.search(r'<td class="section" style="[^"]*padding', html)


def test_html_has_no_tracking_pixel_or_remote_image_and_its_preheader_is_hidden(
    stages: Stages,
) -> None:
    _, html = _digest_html(stages)
    for img in re.findall(r"<img[^>]*>", html):
        assert "alt=" in img and "http" not in img
    assert "url(" not in html and "background=" not in html
    preheader = re.search(r'<div class="preheader" style="([^"]*)">([^<&]+)', html)
    assert preheader is not None, html[:2000]
    assert "1 new alert" not in preheader.group(2)  # says what is in this digest
    assert preheader.group(2).startswith("4 new alerts for Medway: Advisory ")
    # Shown by the inbox after the subject, never in the message itself.
    for rule in ("display:none", "max-height:0", "opacity:0", "mso-hide:all"):
        assert rule in preheader.group(1).replace(" ", ""), preheader.group(1)


def test_one_h1_and_every_link_makes_sense_out_of_context(stages: Stages) -> None:
    """Screen readers list a message's links on their own; mail clients strip aria-label,
    so the words must be in the link text itself."""
    _, html = _digest_html(stages)
    assert len(re.findall(r"<h1[\s>]", html)) == 1
    links = [
        " ".join(re.sub(r"<[^>]+>", "", text).split())
        for text in re.findall(r"<a [^>]*>(.*?)</a>", html, re.S)
    ]
    assert links
    for text in links:
        assert text.lower() not in {"read more", "here", "click here", "more", "link"}, links
    read_more = [text for text in links if text.startswith("Read more")]
    assert len(read_more) == 4 and len(set(read_more)) == 4
    assert "Read more: Advisory news-0" in read_more
    assert "aria-label" not in html


def _luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_text_colour_has_enough_contrast_on_its_background(stages: Stages) -> None:
    _, html = _digest_html(stages)
    body = html[html.index("<body") :]
    colours = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", body))
    assert colours
    for colour in colours:
        lighter, darker = sorted((_luminance("#ffffff"), _luminance(colour)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, colour


def test_text_part_carries_the_same_content_as_the_html(stages: Stages) -> None:
    text, html = _digest_html(stages)
    flat = " ".join(text.split())
    titles = re.findall(r"<h3[^>]*><a [^>]*>([^<]+)</a></h3>", html)
    assert len(titles) == 4
    for title in titles:
        assert title in flat
    for summary in ("Summary £0 “quoted”.", "Summary £2 “quoted”."):
        assert (
            summary in flat
            and summary.replace("£", "&#163;").replace("“", "&#8220;").replace("”", "&#8221;")
            in html
        )
    for link in re.findall(r'href="(https?://[^"]+)"', html):
        assert link.replace("&amp;", "&") in text


def test_fifty_advisories_show_the_newest_and_link_to_the_rest_under_100_kb(stages: Stages) -> None:
    text, html = _digest_html(stages, count=50)
    assert len(html.encode()) < 100_000
    shown = re.findall(r"<h3[^>]*><a [^>]*>([^<]+)</a></h3>", html)
    assert len(shown) == stages.digests.max_items
    assert (
        "Advisory force-wide" in shown
        and "Advisory news-0" in shown
        and "Advisory news-48" not in shown
    )
    assert "31 more alerts" in html and "31 more alerts" in text
    assert ">Advisory news-48</a>" in html and "And 1 older, on the website" in html
    assert 'href="http://localhost:8000/areas/medway"' in html


def test_hostile_advisory_renders_harmless(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"], frequency="immediate")
    save(
        stages,
        advisory(
            "hostile",
            title=HOSTILE_TITLE,
            body=HOSTILE_BODY_HTML + "<p>__unsubscribe_url_0000__</p>",
        ),
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, _, message)] = built(stages)
    text, html = parts(message)
    for marker in (
        "<script",
        "javascript:",
        "onerror",
        "tracker.example",
        "alert('body')",
        "alert('img')",
    ):
        assert marker not in html, marker
    for marker in (
        "<script",
        "javascript:",
        "tracker.example",
        "alert('body')",
        "alert('link')",
        "alert('t')",
    ):
        assert marker not in text, marker
    # The title's one text form, as the web page shows it: markup dropped, one line.
    assert message["Subject"] == "Scam warning Bcc: victim@example.org"
    assert re.search(r"<h1[^>]*>Scam warning Bcc: victim@example.org</h1>", html)
    assert "&lt;script" not in html and "<script" not in text
    assert (
        "Residents of Medway should be careful." in html
        and "Residents of Medway should be careful." in text
    )
    # Text that looks like a placeholder is left alone: the real ones carry a nonce.
    assert "__unsubscribe_url_0000__" in html


def test_an_operator_template_replaces_the_packaged_one_and_the_package_serves_the_rest(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    ours = tmp_path / "templates"
    (ours / "email").mkdir(parents=True)
    (ours / "email" / "digest.txt").write_text(
        "From the council: {{ sections|length }} section(s)\n", encoding="utf-8"
    )
    stages = make_stages(tmp_path, sqlite_url, clock, gazetteer, templates=ours)
    advisory_id = save(stages, advisory("fraud", title="Caller poses as officer"))
    loaded = stages.store.advisories.load([advisory_id])
    entry = Entry(advisory_id, loaded[advisory_id].revision, updated=False)
    rendered = DigestRenderer(stages.mail, stages.digests, stages.gazetteer).render(
        Variant(DigestKind.DAILY, (entry,), ("medway",), False), loaded
    )
    assert rendered.text == "From the council: 1 section(s)\n"
    assert "Caller poses as officer" in rendered.html  # digest.html still comes from the package


def test_without_a_templates_folder_the_packaged_templates_serve(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    stages = make_stages(tmp_path, sqlite_url, clock, gazetteer, templates=None)
    advisory_id = save(stages, advisory("fraud", title="Caller poses as officer"))
    loaded = stages.store.advisories.load([advisory_id])
    entry = Entry(advisory_id, loaded[advisory_id].revision, updated=False)
    rendered = DigestRenderer(stages.mail, stages.digests, stages.gazetteer).render(
        Variant(DigestKind.DAILY, (entry,), ("medway",), False), loaded
    )
    assert "Caller poses as officer" in rendered.text and "Caller poses as officer" in rendered.html


def test_a_broken_template_names_the_file(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    from tests.support import REPO

    folder = tmp_path / "templates" / "email"
    folder.mkdir(parents=True)
    for source in (REPO / "templates" / "email").iterdir():
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "digest.html").write_text("{% for x in %}", encoding="utf-8")
    stages = make_stages(tmp_path, sqlite_url, clock, gazetteer, templates=folder.parent)
    with pytest.raises(EmailTemplateError, match="broken email template") as caught:
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
        )
    assert str(caught.value.where).startswith(str(folder / "digest.html"))


def test_a_huge_digest_lists_some_titles_and_sends_the_rest_to_the_web(stages: Stages) -> None:
    text, html = _digest_html(stages, count=150)
    assert len(html.encode()) < 100_000
    assert "131 more alerts" in html and "And 101 older, on the website" in html
    assert "And 101 older, on the website." in text


def test_one_renderer_renders_a_new_revision_of_an_advisory_with_its_new_words(
    stages: Stages,
) -> None:
    advisory_id = save(stages, advisory("fraud", title="Caller poses as officer"))
    renderer = DigestRenderer(stages.mail, stages.digests, stages.gazetteer)

    def render_now(updated: bool) -> str:
        loaded = stages.store.advisories.load([advisory_id])
        entry = Entry(advisory_id, loaded[advisory_id].revision, updated=updated)
        return renderer.render(Variant(DigestKind.DAILY, (entry,), ("medway",), False), loaded).text

    assert "Caller poses as officer" in render_now(False)
    save(stages, advisory("fraud", title="Caller poses as detective"), at=NOW - HOUR / 2)
    text = render_now(True)
    assert "Caller poses as detective" in text and "Caller poses as officer" not in text


def test_a_title_with_markup_reads_the_same_in_subject_html_text_and_on_the_web(
    stages: Stages,
) -> None:
    subscribe(stages, "jane@example.org", ["medway"], frequency="immediate")
    subscribe(stages, "day@example.org", ["medway"], frequency="daily")
    title = "Fraud &amp; <b>scams</b> in <i>Medway</i>"
    save(stages, advisory("marked", title=title))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.DAILY, now=NOW
    )
    [(_, _, single), (_, _, digest)] = built(stages)
    assert single["Subject"] == "Fraud & scams in Medway" == plain_text(title)
    for message in (single, digest):
        text, html = parts(message)
        assert "Fraud & scams in Medway" in text
        assert "Fraud &amp; scams in Medway" in html
        assert "<b>" not in html and "&lt;b&gt;" not in html and "<b>" not in text


def test_the_preheader_is_cut_at_a_word(stages: Stages) -> None:
    subscribe(stages, "jane@example.org", ["medway"], frequency="immediate")
    long_summary = "Residents are warned about callers who claim to be from the bank " * 5
    save(stages, advisory("long", title="Phone scam", summary=long_summary))
    queue_digests(
        stages.mail, stages.digests, stages.store, stages.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    [(_, _, message)] = built(stages)
    _, html = parts(message)
    preheader = re.search(r'<div class="preheader" style="[^"]*">([^<]*?)&#847;', html)
    assert preheader is not None
    shown = html_lib.unescape(preheader.group(1).replace("\r\n", " "))
    assert shown.endswith("…") and len(shown) <= 140
    assert long_summary.startswith(shown[:-1])
    assert long_summary[len(shown) - 1] == " "  # the cut falls between words


def test_one_template_environment_escapes_html_templates_and_not_text_ones(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<p>{{ title }}</p>")
    (tmp_path / "page.txt").write_text("{{ title }}\n")
    env = template_environment(tmp_path)
    assert (
        env.get_template("page.html").render(title="Fish & <chips>")
        == "<p>Fish &amp; &lt;chips&gt;</p>"
    )
    assert env.get_template("page.txt").render(title="Fish & <chips>") == "Fish & <chips>\n"
    with pytest.raises(UndefinedError):
        env.get_template("page.txt").render()


#: Documents premailer treats in its own ways: no <head> (it adds one), no doctype, a
#: comment beside <html>, a print stylesheet, rules it cannot inline (kept in <style>,
#: made !important), a filter pseudo-class, an ignored block, an inline style it keeps,
#: no stylesheet, two stylesheets.
_ODD_DOCUMENTS = [
    "<html><body><p class='x'>a</p><style>.x{color:red}</style></body></html>",
    "<!DOCTYPE html><html><head><style>p{color:red} a:hover{color:blue}</style></head>"
    "<body><p>b</p><a href='#'>l</a></body></html>",
    "<html><head><style>p{color:red} a:hover{color:blue}</style></head><body><p>c</p></body></html>",
    "<!-- c --><html><head><style>p{color:red}</style></head><body><p>d</p></body></html>",
    "<html><head><style media='print'>p{color:green}</style><style>p{color:red}</style></head>"
    "<body><p>e</p></body></html>",
    "<html><head><style>li:first-child{color:red}</style></head><body><ul><li>f</li><li>g</li></ul></body></html>",
    "<html><head><style>p{color:red !important; margin:0}</style><style data-premailer='ignore'>"
    "@media (max-width:600px){p{margin:1px}}</style></head><body><p style='margin:2px'>h</p></body></html>",
    "<html><head><title>i</title></head><body><p>i</p></body></html>",
    "<html><head><style>p{color:red}</style><style>p{color:blue} td{background-color:#fff}</style></head>"
    "<body><table><tr><td><p>j</p></td></tr></table></body></html>",
]


def test_inlining_variants_together_gives_each_what_premailer_gives_it_alone(
    stages: Stages, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents: list[str] = []
    real = render.inline_css_all

    def keeping(batch: Sequence[str]) -> list[str]:
        documents.extend(batch)
        return real(batch)

    monkeypatch.setattr(render, "inline_css_all", keeping)
    subscribe(stages, "jane@example.org", ["medway"])
    subscribe(stages, "joe@example.org", ["medway", "ashford"], forwardable=True)
    subscribe(stages, "kim@example.org", ["ashford"], frequency="immediate")
    save(stages, advisory("news-medway", areas=["medway"], body=HOSTILE_BODY_HTML))
    save(stages, advisory("news-ashford", areas=["ashford"], summary="Summary £1 “quoted”."))
    save(
        stages, advisory("force-wide", areas=["kent"], body="<p>Advice.</p>" * 3000)
    )  # over the size limit
    for frequency in (Frequency.DAILY, Frequency.IMMEDIATE):
        queue_digests(
            stages.mail, stages.digests, stages.store, stages.gazetteer, frequency, now=NOW
        )
    # Jane's and Joe's digests, Kim's two alerts, the too long one again with its summary.
    assert len(documents) == 5
    documents += _ODD_DOCUMENTS * 2
    assert render.inline_css_all(documents) == [render.inline_css(html) for html in documents]
