"""Reading one advisory file: front matter, dates, entities, sanitised Markdown, and every
kind of bad file reported with its name, line and fix. The parser is pure (no store)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nh3
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError
from alerts.ingest.build import ParsedFile
from alerts.ingest.dates import LONDON
from alerts.ingest.files import MAX_BYTES, parse_advisory_bytes, parse_advisory_file
from alerts.text import MAX_DEPTH
from alerts.types import Priority, Status
from tests.support import NOW, SAMPLE

URL = "https://www.kent.police.uk/news/kent/2020/example/"


def advisory(front: str, body: str = "Body text.\n", *, fence: str = "```yaml") -> bytes:
    """An advisory file: ``front`` (YAML lines) in a fenced block (or --- block), then ``body``."""
    close = "---" if fence == "---" else "```"
    return f"{fence}\n{front.strip()}\n{close}\n\n{body}".encode()


def minimal(**lines: str) -> str:
    """Front matter with title, url and date, each replaceable (or dropped with '')."""
    values = {"title": "Appeal after burglary", "url": URL, "publish": "\n  date: 14:30 18/12/2020"}
    values.update(lines)
    return "\n".join(
        f"{key}: {value}" if not value.startswith("\n") else f"{key}:{value}"
        for key, value in values.items()
        if value
    )


def parse(
    data: bytes, gazetteer: Gazetteer, *, where: str = "advisory.md", now: datetime = NOW
) -> ParsedFile:
    return parse_advisory_bytes(data, where, gazetteer, now=now)


def rejected(data: bytes, gazetteer: Gazetteer, where: str = "bad.md") -> AdvisoryError:
    with pytest.raises(AdvisoryError) as info:
        parse(data, gazetteer, where=where)
    return info.value


# -- the sample and the front-matter forms -----------------------------------------


def test_sample_is_parsed_with_title_suffix_stripped_and_entities_decoded(
    gazetteer: Gazetteer,
) -> None:
    parsed = parse_advisory_file(SAMPLE, gazetteer, now=NOW)
    item = parsed.advisory
    assert item.title == "Safety advice after telephone fraudster poses as Kent Police officer"
    assert item.url == item.key
    assert item.url.startswith("https://www.kent.police.uk/news/kent/")
    assert item.image_url is not None
    assert "&amp;" not in item.image_url
    assert item.image_url.endswith("?crop=(15,0,585,300)&w=600&h=300&scale=both")
    assert item.summary.startswith("Fraud investigators are reminding residents")
    assert item.published_at == datetime(2020, 12, 18, 14, 30, tzinfo=UTC)
    assert item.published_at.utcoffset() == timedelta(0)  # December: GMT
    assert item.force_area == "kent"
    assert {"kent", "medway"} <= item.areas
    assert "<strong>Medway</strong>" in item.body_html
    assert "Medway man of money" in item.body_text
    assert parsed.warnings == []


def test_sample_og_values_are_kept_in_extra(gazetteer: Gazetteer) -> None:
    item = parse_advisory_file(SAMPLE, gazetteer, now=NOW).advisory
    assert item.extra["og"]["locale"] == "en_GB"
    assert "&amp;" not in item.extra["og"]["image"]


def test_plain_dashes_front_matter_is_read_like_a_fenced_block(gazetteer: Gazetteer) -> None:
    fenced = parse(advisory(minimal()), gazetteer).advisory
    dashed = parse(advisory(minimal(), fence="---"), gazetteer).advisory
    assert dashed == fenced


def test_quoted_values_and_entities_in_any_value_are_decoded(gazetteer: Gazetteer) -> None:
    front = minimal(title="'Fish &amp; chips shop &quot;raid&quot; | Kent Police'", url=f'"{URL}"')
    item = parse(advisory(front), gazetteer).advisory
    assert item.title == 'Fish & chips shop "raid"'
    assert item.url == URL


@pytest.mark.parametrize(
    "title",
    [
        "Appeal | Kent Police",
        "Appeal  |  Kent Police ",
        "Appeal - Kent Police",
        "Appeal | kent police",
    ],
)
def test_force_suffix_is_stripped_from_titles(gazetteer: Gazetteer, title: str) -> None:
    assert parse(advisory(minimal(title=title)), gazetteer).advisory.title == "Appeal"


def test_kent_police_inside_a_title_is_kept(gazetteer: Gazetteer) -> None:
    title = "Fraudster poses as Kent Police officer"
    assert parse(advisory(minimal(title=title)), gazetteer).advisory.title == title


def test_windows_line_endings_and_a_byte_order_mark_are_accepted(gazetteer: Gazetteer) -> None:
    data = b"\xef\xbb\xbf" + advisory(minimal()).replace(b"\n", b"\r\n")
    assert parse(data, gazetteer).advisory.title == "Appeal after burglary"


def test_status_expires_and_priority_are_read(gazetteer: Gazetteer) -> None:
    front = minimal() + "\nstatus: Withdrawn\nexpires: 09:00 01/07/2021\npriority: URGENT"
    item = parse(advisory(front), gazetteer).advisory
    assert item.status is Status.WITHDRAWN
    assert item.priority is Priority.URGENT
    assert item.expires_at == datetime(2021, 7, 1, 8, 0, tzinfo=UTC)


def test_defaults_are_active_normal_never_expiring(gazetteer: Gazetteer) -> None:
    item = parse(advisory(minimal()), gazetteer).advisory
    assert (item.status, item.priority, item.expires_at) == (Status.ACTIVE, Priority.NORMAL, None)


def test_unknown_keys_are_kept_in_extra(gazetteer: Gazetteer) -> None:
    front = minimal() + "\ncategory: fraud\nreference: {crime: 46/1234/20, officer: PC Smith}"
    extra = parse(advisory(front), gazetteer).advisory.extra
    assert extra["category"] == "fraud"
    assert extra["reference"] == {"crime": "46/1234/20", "officer": "PC Smith"}


def test_a_guid_is_the_identity_when_given(gazetteer: Gazetteer) -> None:
    item = parse(advisory(minimal() + "\nguid: kent-2020-0001"), gazetteer).advisory
    assert (item.key, item.url) == ("kent-2020-0001", URL)


def test_url_is_canonicalised(gazetteer: Gazetteer) -> None:
    item = parse(
        advisory(minimal(url="HTTPS://WWW.Kent.Police.UK/news/x?id=1#top")), gazetteer
    ).advisory
    assert item.url == "https://www.kent.police.uk/news/x?id=1"


# -- dates ---------------------------------------------------------------------------


def dated(value: str, gazetteer: Gazetteer) -> datetime:
    return parse(advisory(minimal(publish=f"\n  date: {value}")), gazetteer).advisory.published_at


def test_summer_date_is_british_summer_time(gazetteer: Gazetteer) -> None:
    when = dated("14:30 18/07/2020", gazetteer)
    assert when.utcoffset() == timedelta(hours=1)
    assert when == datetime(2020, 7, 18, 13, 30, tzinfo=UTC)


def test_winter_date_is_greenwich_mean_time(gazetteer: Gazetteer) -> None:
    when = dated("14:30 18/12/2020", gazetteer)
    assert when.utcoffset() == timedelta(0)
    assert when == datetime(2020, 12, 18, 14, 30, tzinfo=UTC)


def test_october_repeated_hour_is_read_as_the_first_summer_time_instant(
    gazetteer: Gazetteer,
) -> None:
    # Clocks went back at 02:00 BST on 25 October 2020: 01:30 happened twice.
    when = dated("01:30 25/10/2020", gazetteer)
    assert when == datetime(2020, 10, 25, 0, 30, tzinfo=UTC)
    assert when.utcoffset() == timedelta(hours=1)


def test_march_missing_hour_is_read_as_winter_time_an_hour_later_on_the_clock(
    gazetteer: Gazetteer,
) -> None:
    # Clocks went forward at 01:00 GMT on 29 March 2020: 01:30 never happened.
    when = dated("01:30 29/03/2020", gazetteer)
    assert when == datetime(2020, 3, 29, 1, 30, tzinfo=UTC)
    assert when.astimezone(LONDON).strftime("%H:%M %Z") == "02:30 BST"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-12-18T14:30:00Z", datetime(2020, 12, 18, 14, 30, tzinfo=UTC)),
        ("2020-07-18T14:30:00+01:00", datetime(2020, 7, 18, 13, 30, tzinfo=UTC)),
        ("'2020-07-18T14:30'", datetime(2020, 7, 18, 13, 30, tzinfo=UTC)),  # naive: London time
        ("2020-07-18", datetime(2020, 7, 17, 23, 0, tzinfo=UTC)),  # YAML date: London midnight
        ("18/07/2020", datetime(2020, 7, 17, 23, 0, tzinfo=UTC)),
        ("18/12/2020", datetime(2020, 12, 18, 0, 0, tzinfo=UTC)),
        ("'18/12/2020 14:30'", datetime(2020, 12, 18, 14, 30, tzinfo=UTC)),
        ("' 14:30   18/12/2020 '", datetime(2020, 12, 18, 14, 30, tzinfo=UTC)),
    ],
)
def test_iso_8601_and_bare_uk_dates_are_accepted(
    gazetteer: Gazetteer, value: str, expected: datetime
) -> None:
    when = dated(value, gazetteer)
    assert when.tzinfo is not None
    assert when == expected


def test_no_date_means_published_when_first_seen_with_a_warning(gazetteer: Gazetteer) -> None:
    parsed = parse(advisory(minimal(publish="")), gazetteer, where="undated.md")
    assert parsed.advisory.published_at == NOW
    assert parsed.advisory.date_assumed is True
    [warning] = [w for w in parsed.warnings if "publish.date" in w]
    assert warning.startswith("undated.md: no publish.date; taken as published when first seen")


# -- markdown body ---------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every tag and attribute in an HTML fragment, as a browser would tokenise it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]


HOSTILE_BODY = """\
Hello <script>alert(1)</script> world.

<img src="x" onerror="alert(2)"> <p onclick="alert(3)" onmouseover=alert(4)>para</p>

[click](javascript:alert(5)) [also](JaVaScRiPt:alert(6)) <a href="javascript:alert(7)">raw</a>
<a href="  javascript:alert(8)">spaced</a> <a href="data:text/html,<script>alert(9)</script>">data</a>

<iframe src="https://evil.example/"></iframe><style>body{display:none}</style>
<svg onload="alert(10)"><script>alert(11)</script></svg>

[safe](https://www.kent.police.uk/) and **bold**
"""


def test_markdown_body_is_sanitised(gazetteer: Gazetteer) -> None:
    html = parse(advisory(minimal(), HOSTILE_BODY), gazetteer).advisory.body_html
    elements = _Elements()
    elements.feed(html)
    assert not {"script", "style", "iframe", "svg", "img"} & set(elements.tags)
    assert not [name for name, _ in elements.attrs if name.startswith("on")]
    hrefs = [value for name, value in elements.attrs if name == "href"]
    assert hrefs == ["https://www.kent.police.uk/"]
    assert "<strong>bold</strong>" in html


def test_script_text_never_survives_as_markup(gazetteer: Gazetteer) -> None:
    html = parse(advisory(minimal(), "<script>alert(1)</script>"), gazetteer).advisory.body_html
    assert "<script" not in html.lower()


def nesting_depth(fragment: str) -> int:
    """How deep the open elements nest (void and self-closing tags aside)."""
    depth = deepest = 0
    for closing, name in re.findall(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*>", fragment):
        if name.lower() in {"br", "hr", "img", "p", "li"}:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


@pytest.mark.parametrize("opener", ["<ul><li>", "<div>", "<blockquote>"])
def test_absurdly_nested_html_is_reduced_to_plain_text_quickly(
    gazetteer: Gazetteer, opener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The HTML parser under nh3 is quadratic in depth: 150,000 levels would take most of
    # an hour. "Quickly" means that parser only ever sees markup of bounded depth, so a
    # spy (it calls the real nh3) records the depth of everything handed to it.
    depths: list[int] = []
    real_clean = nh3.clean

    def clean(html: str, **options: Any) -> str:
        depths.append(nesting_depth(html))
        if depths[-1] > MAX_DEPTH:
            return ""  # the real parse would take most of an hour; the assert below fails
        return real_clean(html, **options)

    monkeypatch.setattr(nh3, "clean", clean)
    body = opener * 150_000 + "<script>alert(1)</script> a < b <img src=x onerror=alert(2)> in Deal"
    item = parse(advisory(minimal(), body), gazetteer).advisory
    assert max(depths, default=0) <= MAX_DEPTH
    elements = _Elements()
    elements.feed(item.body_html)
    assert set(elements.tags) == {"p"}
    assert elements.attrs == []
    assert "a &lt; b" in item.body_html
    assert "deal" in item.areas


def test_ordinary_nesting_keeps_its_markup(gazetteer: Gazetteer) -> None:
    body = "<div>" * 50 + "<ul><li>one</li><li><b>two</b></li></ul>" + "</div>" * 50
    html = parse(advisory(minimal(), body), gazetteer).advisory.body_html
    assert "<ul><li>one</li><li><b>two</b></li></ul>" in html


# -- bad files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "empty file", None),
        (b"\n  \n\n", "empty file", None),
        (b"# Just a heading\n\nNo front matter here.\n", "no front matter", 1),
        (b"```yaml\ntitle: x\nurl: https://a.example/\n\nbody never closes\n", "never closed", 1),
        (b"---\n- title\n- url\n---\nbody\n", "must be a YAML mapping", 2),
        (b"```yaml\njust a sentence\n```\n", "must be a YAML mapping", 2),
        (b"```yaml\n```\n", "must be a YAML mapping", 2),
    ],
)
def test_malformed_structure_is_rejected_with_the_line(
    gazetteer: Gazetteer, data: bytes, message: str, line: int | None
) -> None:
    error = rejected(data, gazetteer)
    assert message in error.message
    assert error.line == line
    assert str(error).startswith(f"bad.md:{line}: " if line else "bad.md: ")
    assert error.hint


def test_broken_yaml_names_the_line_in_the_file(gazetteer: Gazetteer) -> None:
    data = b"\n```yaml\ntitle: ok\nurl: https://a.example/\nog:\n  description: [unclosed\npublish:\n```\nbody\n"
    error = rejected(data, gazetteer)
    assert "broken YAML" in error.message
    # The file's line 7 is where PyYAML finds the list never closed ("publish:").
    assert error.line == 7
    assert error.hint == "check the indentation, brackets and quotes on that line"


def test_unquoted_colon_in_a_value_says_to_quote_it(gazetteer: Gazetteer) -> None:
    error = rejected(b"```yaml\ntitle: Warning: scam calls\n```\n", gazetteer)
    assert error.line == 2
    assert error.hint == "put the value in quotes: it contains ': '"


def test_a_long_bad_value_is_cut_short_in_the_message(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal(url="/" + "x" * 5000)), gazetteer)
    assert len(str(error)) < 300


@pytest.mark.parametrize(
    ("front", "message", "line"),
    [
        (minimal(title=""), "no title", 2),
        (minimal(title="'  '"), "no title", 2),
        (minimal(title="'| Kent Police'"), "empty once the force name is removed", 2),
        (minimal(url=""), "no url", 2),
        (minimal(url="/news/kent/2020/example/"), "not an absolute http(s) address", 3),
        (minimal(url="ftp://example.org/x"), "not an absolute http(s) address", 3),
        (minimal(url="javascript:alert(1)"), "not an absolute http(s) address", 3),
        (minimal(url="[1, 2]"), "url must be an address", 3),
        (minimal(publish="\n  date: 14:30 31/02/2020"), "impossible date", 5),
        (minimal(publish="\n  date: 25:61 18/12/2020"), "impossible date", 5),
        (minimal(publish="\n  date: next tuesday"), "unreadable date", 5),
        (minimal(publish="\n  date: 14:30 18/12/1066"), "impossible year 1066", 5),
        (minimal() + "\nstatus: deleted", "status must be", 6),
        (minimal() + "\npriority: high", "priority must be", 6),
        (minimal() + "\nexpires: 31/02/2021", "expires", 6),
    ],
)
def test_missing_or_bad_values_are_rejected_with_line_and_fix(
    gazetteer: Gazetteer, front: str, message: str, line: int
) -> None:
    error = rejected(advisory(front), gazetteer)
    assert message in error.message
    assert error.line == line, str(error)
    assert str(error).startswith(f"bad.md:{line}: ")
    assert error.hint


def test_impossible_date_hint_shows_the_expected_form(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal(publish="\n  date: 14:30 31/02/2020")), gazetteer)
    assert error.hint is not None
    assert "HH:MM DD/MM/YYYY" in error.hint


def test_not_utf8_names_the_line_of_the_bad_byte(gazetteer: Gazetteer) -> None:
    data = advisory(
        minimal(), "First line.\n\nCaf\xe9 in Latin-1.\n".encode("latin-1").decode("latin-1")
    )
    data = data.replace("Café".encode(), b"Caf\xe9")
    error = rejected(data, gazetteer)
    assert "not UTF-8" in error.message
    assert error.line == 10
    assert error.hint == "save the file as UTF-8"


def test_utf16_is_named_as_such(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal()).decode().encode("utf-16"), gazetteer)
    assert "UTF-16" in error.message


def test_binary_file_is_rejected(gazetteer: Gazetteer) -> None:
    error = rejected(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", gazetteer)
    assert "binary" in error.message


def test_control_characters_in_front_matter_name_the_line(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal() + "\nnote: bell \x07 here"), gazetteer)
    assert error.line == 6
    assert "control character" in error.message


def test_yaml_alias_bomb_is_rejected_not_expanded(gazetteer: Gazetteer) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)
    ]
    error = rejected(advisory(minimal() + "\n" + "\n".join(lines)), gazetteer)
    assert "too deeply nested or too large" in error.message


def test_self_referencing_yaml_is_rejected(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal() + "\nloop: &loop [*loop]"), gazetteer)
    assert "too deeply nested" in error.message


def test_huge_title_is_rejected_quickly(gazetteer: Gazetteer) -> None:
    error = rejected(advisory(minimal(title="'" + " - x" * 5_000 + "'")), gazetteer)
    assert "title" in error.message


# -- files on disk -----------------------------------------------------------------------


IO_ACCOUNTING = Path("/proc/thread-self/io")


def bytes_read_so_far() -> int:
    """What this thread has read through read(2) so far: Linux's own I/O accounting."""
    for line in IO_ACCOUNTING.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "rchar":
            return int(value)
    raise AssertionError(f"no rchar in {IO_ACCOUNTING}")


@pytest.mark.skipif(not IO_ACCOUNTING.exists(), reason="needs Linux's /proc/thread-self/io")
def test_50_megabyte_file_is_rejected_without_being_read(
    gazetteer: Gazetteer, tmp_path: Path
) -> None:
    big = tmp_path / "huge.md"
    with big.open("wb") as handle:
        handle.write(advisory(minimal()))  # a good advisory, if anything read it
        handle.truncate(50_000_000)  # sparse: instant, takes no disk
    before = bytes_read_so_far()
    with pytest.raises(AdvisoryError) as info:
        parse_advisory_file(big, gazetteer, now=NOW)
    # Reading even the permitted first MAX_BYTES would show here as 2 MB.
    assert bytes_read_so_far() - before < 64 * 1024
    assert str(info.value).startswith(
        f"{big}: file is 50.0 MB; an advisory is at most {MAX_BYTES // 1_000_000} MB"
    )
    assert info.value.hint


def test_a_file_one_byte_over_the_limit_is_rejected_and_one_at_it_is_read(
    gazetteer: Gazetteer, tmp_path: Path
) -> None:
    good = advisory(minimal(), "Fraud in Medway.")
    at_limit = tmp_path / "at-limit.md"
    at_limit.write_bytes(good + b" " * (MAX_BYTES - len(good)))
    assert at_limit.stat().st_size == MAX_BYTES
    assert parse_advisory_file(at_limit, gazetteer, now=NOW).advisory.title
    over = tmp_path / "over.md"
    over.write_bytes(good + b" " * (MAX_BYTES + 1 - len(good)))
    with pytest.raises(AdvisoryError, match="an advisory is at most 2 MB"):
        parse_advisory_file(over, gazetteer, now=NOW)


def test_folder_named_like_an_advisory_is_rejected(gazetteer: Gazetteer, tmp_path: Path) -> None:
    folder = tmp_path / "looks-like.md"
    folder.mkdir()
    with pytest.raises(AdvisoryError, match="is a folder"):
        parse_advisory_file(folder, gazetteer, now=NOW)


def test_missing_file_is_rejected(gazetteer: Gazetteer, tmp_path: Path) -> None:
    with pytest.raises(AdvisoryError, match="cannot read file"):
        parse_advisory_file(tmp_path / "gone.md", gazetteer, now=NOW)


def test_fifo_is_rejected_without_blocking(gazetteer: Gazetteer, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    with pytest.raises(AdvisoryError, match="not a regular file"):
        parse_advisory_file(fifo, gazetteer, now=NOW)


def test_unreadable_file_is_rejected(gazetteer: Gazetteer, tmp_path: Path) -> None:
    import os

    locked = tmp_path / "locked.md"
    locked.write_bytes(advisory(minimal()))
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip(
            "running as root (or with CAP_DAC_OVERRIDE): file permissions do not stop root reading"
        )
    with pytest.raises(AdvisoryError, match="permission denied") as info:
        parse_advisory_file(locked, gazetteer, now=NOW)
    assert info.value.hint


# -- generated junk: the parser returns a ParsedFile or raises AdvisoryError, nothing else --

SAMPLE_BYTES = SAMPLE.read_bytes()
FRONT_END = SAMPLE_BYTES.index(b"\n```\n")  # end of the sample's front matter
JUNK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def survives(data: bytes, gazetteer: Gazetteer) -> None:
    try:
        result = parse(data, gazetteer, where="junk.md")
    except AdvisoryError as error:
        assert error.path == "junk.md"
        assert "\n" not in str(error)  # one line for the report
        return
    assert isinstance(result, ParsedFile)
    assert result.advisory.title and "\n" not in result.advisory.title
    assert result.advisory.published_at.tzinfo is not None


@JUNK
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_crash_the_parser(gazetteer: Gazetteer, data: bytes) -> None:
    survives(data, gazetteer)


@JUNK
@given(text=st.text(max_size=3000))
def test_random_text_never_crashes_the_parser(gazetteer: Gazetteer, text: str) -> None:
    survives(text.encode("utf-8", "surrogatepass"), gazetteer)
    survives(f"```yaml\n{text}\n```\nbody".encode("utf-8", "surrogatepass"), gazetteer)


@JUNK
@given(cut=st.integers(min_value=0, max_value=len(SAMPLE_BYTES)))
def test_truncated_sample_never_crashes_the_parser(gazetteer: Gazetteer, cut: int) -> None:
    survives(SAMPLE_BYTES[:cut], gazetteer)


@JUNK
@given(
    where=st.integers(min_value=0, max_value=FRONT_END),
    insert=st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from(
            [
                b"\n",
                b": ",
                b"- ",
                b"&a ",
                b"*a",
                b"!!binary ",
                b"'",
                b'"',
                b"{",
                b"[",
                b"\t",
                b"```\n",
                b"---\n",
                b"&amp;",
                b"\xef\xbb\xbf",
            ]
        ),
    ),
)
def test_insertions_into_the_sample_front_matter_never_crash_the_parser(
    gazetteer: Gazetteer, where: int, insert: bytes
) -> None:
    survives(SAMPLE_BYTES[:where] + insert + SAMPLE_BYTES[where:], gazetteer)


YAML_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=60),
    st.dates().map(str), st.sampled_from(["14:30 18/12/2020", "31/02/2020", "25:61 01/01/2020", "https://a.example/", "/rel", "Medway", "ME4 4TR", "urgent", "withdrawn"]),
)  # fmt: skip
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "title",
        "url",
        "area",
        "areas",
        "publish",
        "date",
        "og",
        "status",
        "expires",
        "priority",
        "guid",
        "summary",
        "other",
    ]
)


@JUNK
@given(front=st.dictionaries(KEYS, YAML_VALUES, max_size=8), dashes=st.booleans())
def test_well_formed_yaml_with_any_values_never_crashes_the_parser(
    gazetteer: Gazetteer, front: dict[str, object], dashes: bool
) -> None:
    text = yaml.safe_dump(front, allow_unicode=True)
    survives(advisory(text, fence="---" if dashes else "```yaml"), gazetteer)
