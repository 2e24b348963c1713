"""What counts as a material change: the words and link targets, not whitespace,
markup or tracking parameters."""

from __future__ import annotations

import pytest

from alerts.material import material_hash, material_text, strip_tracking

BODY = '<p>Call <a href="https://www.kent.police.uk/report/?ref=1">101</a> if you see them.</p><p>Stay safe.</p>'


@pytest.mark.parametrize(
    "other",
    [
        BODY.replace("Call ", "Call  \n "),  # whitespace
        BODY.replace("<p>Stay", "<br>Stay").replace(
            "</p><br>", "<br>"
        ),  # a paragraph break as <br>
        BODY.replace("<p>", '<p class="lead">'),  # markup
        BODY.replace("if you", "<strong>if</strong> you"),
        BODY.replace(
            "?ref=1", "?ref=1&utm_source=twitter&utm_medium=social&fbclid=AbC"
        ),  # tracking
        "\n" + BODY + "\n<!-- rendered 10:31:07 -->",
    ],
)
def test_whitespace_markup_and_tracking_are_not_material(other: str) -> None:
    assert material_hash("Appeal ", "Summary", other) == material_hash("Appeal", "Summary", BODY)


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("Appeal: man arrested", BODY),
        ("Appeal", BODY.replace("101", "0900 123 456")),  # a number changed
        (
            "Appeal",
            BODY.replace("kent.police.uk/report/?ref=1", "kent-police.example/report/"),
        ),  # a link's target
        ("Appeal", BODY.replace("?ref=1", "?ref=2")),
        ("Appeal", BODY.replace("Stay safe.", "")),
    ],
)
def test_words_and_link_targets_are_material(title: str, body: str) -> None:
    assert material_hash(title, "Summary", body) != material_hash("Appeal", "Summary", BODY)


def test_inline_markup_joins_words_and_block_markup_parts_them() -> None:
    assert (
        material_text("t", "", "<p>Hel<b>lo</b></p><p>world</p>") == '["t", "", "Hello world", []]'
    )


def test_script_text_is_not_read_as_words() -> None:
    assert material_hash("t", "", "<p>a</p><script>var x = 1</script>") == material_hash(
        "t", "", "<p>a</p>"
    )


def test_strip_tracking_keeps_the_other_parameters_in_order() -> None:
    assert (
        strip_tracking("https://a.example/p?b=2&utm_source=x&a=1&gclid=9")
        == "https://a.example/p?b=2&a=1"
    )
    assert strip_tracking("https://a.example/p") == "https://a.example/p"
