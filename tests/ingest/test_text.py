"""Untrusted text in, safe HTML, plain text and header values out."""

from __future__ import annotations

from alerts.text import html_to_text, one_line, render_markdown, sanitise_html


def test_a_markdown_link_to_a_script_url_keeps_its_words_and_loses_the_url() -> None:
    html = render_markdown(
        "[Click here](javascript:alert(1)) or [this](vbscript:x) and [ok](https://a.example/)"
    )
    assert "javascript" not in html and "vbscript" not in html
    assert "Click here" in html
    assert 'href="https://a.example/"' in html
    assert "javascript" not in html_to_text(html)


def test_inline_html_loses_scripts_handlers_and_styles() -> None:
    html = sanitise_html(
        '<p onclick="x()" style="color:red">Hi<script>alert(1)</script><style>p{}</style></p>'
    )
    assert html == "<p>Hi</p>"


def test_plain_text_keeps_paragraphs_lists_and_link_targets() -> None:
    text = html_to_text(
        '<p>One <a href="https://a.example/x">link</a></p><ul><li>a</li><li>b</li></ul>'
    )
    assert text == "One link (https://a.example/x)\n\n- a\n- b"


def test_one_line_values_cannot_carry_a_header_break() -> None:
    assert one_line("Fraud\r\nBcc: victim@example.org\u2028x") == "Fraud Bcc: victim@example.org x"
    assert one_line("a" * 50, limit=10) == "aaaaaaaaa…"
