"""Advisory files: a fenced ```yaml front-matter block (or a plain --- block), then
Markdown. ``parse_advisory_file`` turns one into an :class:`AdvisoryInput` or raises
:class:`AdvisoryError` naming the file, the line and the fix. It never raises anything
else, whatever the bytes (a property test holds it to that)."""

from __future__ import annotations

import math
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import yaml

from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError, UnknownArea
from alerts.ingest.dates import LONDON, BadDate, parse_date
from alerts.tagging import AdvisoryText, Declared, decide_areas, decision_warnings, declared_areas
from alerts.text import decode_entities, html_to_text, one_line, render_markdown, strip_control
from alerts.types import AdvisoryInput, Priority, Status

MAX_BYTES = 2_000_000
MAX_TITLE = 1_000
SUFFIXES = (".md", ".markdown")
_FENCE_OPEN = re.compile(r"^(```|~~~)\s*(ya?ml)?\s*$", re.IGNORECASE)
_DASHES = re.compile(r"^---\s*$")
_FORCE_SUFFIX = re.compile(
    r"(?:^|\s+)[|\u2013\u2014-]\s+(?P<force>[^|]*?)\s*(?:Police|Constabulary)\s*$", re.IGNORECASE
)
KNOWN_KEYS = {"title", "url", "area", "areas", "publish", "og", "date", "status", "expires", "priority", "guid", "summary"}


class ParsedFile:
    """An advisory read from a file, with warnings that do not stop it being stored."""

    def __init__(self, advisory: AdvisoryInput, warnings: list[str]):
        self.advisory = advisory
        self.warnings = warnings


def parse_advisory_file(
    path: Path, gazetteer: Gazetteer, *, now: datetime, zone: ZoneInfo = LONDON
) -> ParsedFile:
    """Read and validate one advisory file. Raises :class:`AdvisoryError` only."""
    where = str(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise AdvisoryError(
            f"cannot read file: {exc.strerror or exc}", where=where, hint="check the path and that the file exists"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise AdvisoryError(
            "is a folder, not an advisory file", where=where, hint="rename the folder so it does not end in .md"
        )
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block or never end: never open one.
        raise AdvisoryError("not a regular file", where=where, hint="advisories are plain UTF-8 Markdown files")
    # Checked before reading, so a huge file costs one stat, not a read.
    if info.st_size > MAX_BYTES:
        raise AdvisoryError(
            f"file is {info.st_size / 1_000_000:.1f} MB; an advisory is at most {MAX_BYTES // 1_000_000} MB",
            where=where,
            hint="check this is an advisory and not an attachment or export",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # the file may have grown since the stat
    except PermissionError:
        raise AdvisoryError(
            "cannot read file: permission denied", where=where, hint="make it readable by the user running alerts"
        ) from None
    except OSError as exc:
        raise AdvisoryError(
            f"cannot read file: {exc.strerror or exc}", where=where, hint="check the file and try again"
        ) from None
    return parse_advisory_bytes(data, where, gazetteer, now=now, zone=zone)


def parse_advisory_bytes(
    data: bytes, where: str, gazetteer: Gazetteer, *, now: datetime, zone: ZoneInfo = LONDON
) -> ParsedFile:
    """Parse the bytes of one advisory file; ``where`` names it in errors and warnings.
    Raises :class:`AdvisoryError` only, whatever the bytes."""
    if len(data) > MAX_BYTES:
        raise AdvisoryError(
            "file is too large for an advisory",
            where=where,
            hint=f"an advisory is at most {MAX_BYTES // 1_000_000} MB of text",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise AdvisoryError("UTF-16 text, not UTF-8", where=where, line=1, hint="save the file as UTF-8")
    if b"\x00" in data:
        raise AdvisoryError("binary file, not an advisory", where=where, hint="advisories are UTF-8 Markdown text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AdvisoryError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x})",
            where=where,
            line=line,
            hint="save the file as UTF-8",
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front, front_line, body = _split_front_matter(text, where)
    meta = _load_yaml(front, front_line, where)
    return _build(meta, body, front, front_line, where, gazetteer, now=now, zone=zone)


def _split_front_matter(text: str, where: str) -> tuple[str, int, str]:
    """The front-matter text, the file line it starts on, and the Markdown body."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines):
        raise AdvisoryError("empty file", where=where, hint="an advisory starts with a ```yaml block")
    first = lines[start]
    if match := _FENCE_OPEN.match(first.strip()):
        fence = match.group(1)
        is_close = lambda line: line.strip() == fence  # noqa: E731
    elif _DASHES.match(first):
        is_close = lambda line: line.strip() in {"---", "..."}  # noqa: E731
    else:
        raise AdvisoryError(
            "no front matter",
            where=where,
            line=start + 1,
            hint="start the file with a ```yaml block (or a --- block) holding title, url and publish.date",
        )
    for end in range(start + 1, len(lines)):
        if is_close(lines[end]):
            return "\n".join(lines[start + 1 : end]), start + 2, "\n".join(lines[end + 1 :])
    raise AdvisoryError(
        "front matter is never closed", where=where, line=start + 1, hint=f"end it with a line '{first.strip()[:3]}'"
    )


def _load_yaml(front: str, front_line: int, where: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(front)
    except yaml.MarkedYAMLError as exc:
        line = front_line + exc.problem_mark.line if exc.problem_mark else front_line
        problem = str(exc.problem or "unreadable YAML")
        hint = (
            "put the value in quotes: it contains ': '"
            if "mapping values are not allowed" in problem
            else "check the indentation, brackets and quotes on that line"
        )
        raise AdvisoryError(f"broken YAML in front matter: {problem}", where=where, line=line, hint=hint) from None
    except yaml.reader.ReaderError as exc:
        line = front_line + front[: exc.position].count("\n")
        raise AdvisoryError(
            f"front matter holds a control character (#x{exc.character:04x})"
            if isinstance(exc.character, int)
            else "front matter holds an unreadable character",
            where=where,
            line=line,
            hint="remove it",
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError) as exc:
        raise AdvisoryError(
            f"broken YAML in front matter: {one_line(str(exc), limit=200)}",
            where=where,
            line=front_line,
            hint="check the front matter is plain 'key: value' lines",
        ) from None
    if not isinstance(meta, dict):
        raise AdvisoryError(
            "front matter must be a YAML mapping of keys to values",
            where=where,
            line=front_line,
            hint="write 'title: ...', 'url: ...' on separate lines",
        )
    budget = [MAX_NODES]
    try:
        return _decode(meta, budget, 0)
    except _TooComplex:
        raise AdvisoryError(
            "front matter is too deeply nested or too large (YAML anchors and aliases?)",
            where=where,
            line=front_line,
            hint="write plain keys and values",
        ) from None


MAX_NODES = 5_000
MAX_DEPTH = 20


class _TooComplex(Exception):
    pass


def _decode(value: Any, budget: list[int], depth: int) -> Any:
    """Decode entities and strip control characters in keys and values. YAML aliases can
    make a small file a huge (or self-referencing) structure, hence the budget."""
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooComplex
    if isinstance(value, str):
        return strip_control(decode_entities(value))
    if isinstance(value, dict):
        return {strip_control(str(k)): _decode(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_decode(v, budget, depth + 1) for v in value]
    if isinstance(value, bytes):
        return strip_control(value.decode("utf-8", "replace"))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _get(meta: dict[str, Any], dotted: str) -> Any:
    """``publish.date`` from nested mappings, or from a flat ``publish.date``/``og:description`` key."""
    for flat in (dotted, dotted.replace(".", ":")):
        if flat in meta:
            return meta[flat]
    node: Any = meta
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _line_of(front: str, front_line: int, key: str) -> int:
    leaf = key.split(".")[-1]
    for offset, line in enumerate(front.split("\n")):
        if re.match(rf"^\s*['\"]?{re.escape(leaf)}['\"]?\s*:", line):
            return front_line + offset
    return front_line


def _build(
    meta: dict[str, Any],
    body: str,
    front: str,
    front_line: int,
    where: str,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> ParsedFile:
    warnings: list[str] = []

    def fail(key: str, message: str, hint: str | None = None) -> AdvisoryError:
        return AdvisoryError(message, where=where, line=_line_of(front, front_line, key), hint=hint)

    raw_title = meta.get("title")
    if raw_title is None or not str(raw_title).strip():
        raise fail("title", "no title", "add 'title: ...' to the front matter")
    if len(str(raw_title)) > MAX_TITLE:
        raise fail(
            "title", f"the title is {len(str(raw_title))} characters; at most {MAX_TITLE}", "shorten the title"
        )
    title = one_line(_FORCE_SUFFIX.sub("", one_line(str(raw_title))), limit=300)
    if not title:
        raise fail("title", "the title is empty once the force name is removed", "write the advisory's headline")

    url = meta.get("url")
    if url is None or (isinstance(url, str) and not url.strip()):
        raise fail("url", "no url", "add 'url: https://...', the advisory's page: it is its identity")
    if not isinstance(url, str):
        raise fail("url", f"url must be an address, got {_shown(url)}", "write 'url: https://...'")
    url = canonical_url(url.strip())
    if url is None:
        raise fail(
            "url",
            f"url is not an absolute http(s) address: {_shown(meta['url'])}",
            "write the full address, starting https://",
        )
    guid = meta.get("guid")
    key = one_line(str(guid)) if guid not in (None, "") else url
    if not key or len(key) > 2000:
        raise fail("guid", "guid must be 1 to 2000 characters of text", "use the upstream id, or remove guid")

    date_value = _get(meta, "publish.date") or meta.get("date")
    date_assumed = False
    if date_value in (None, ""):
        published_at = now
        date_assumed = True
        warnings.append(
            f"{where}: no publish.date; taken as published when first seen"
            f" ({now.astimezone(zone):%H:%M %d/%m/%Y})"
        )
    else:
        try:
            published_at = parse_date(date_value, zone)
        except BadDate as exc:
            raise fail("date", str(exc), "write it as 'HH:MM DD/MM/YYYY', local UK time") from None

    expires_at = None
    if meta.get("expires") not in (None, ""):
        try:
            expires_at = parse_date(meta["expires"], zone)
        except BadDate as exc:
            raise fail("expires", f"expires: {exc}", "write it as 'HH:MM DD/MM/YYYY', local UK time") from None
    try:
        status = Status(str(meta.get("status") or "active").strip().lower())
    except ValueError:
        raise fail(
            "status", f"status must be 'active' or 'withdrawn', got {_shown(meta.get('status'))}", "fix or remove it"
        ) from None
    try:
        priority = Priority(str(meta.get("priority") or "normal").strip().lower())
    except ValueError:
        raise fail(
            "priority", f"priority must be 'urgent' or 'normal', got {_shown(meta.get('priority'))}", "fix or remove it"
        ) from None

    summary = one_line(str(_get(meta, "og.description") or meta.get("summary") or ""), limit=1000)
    image = _get(meta, "og.image")
    image_url = canonical_url(image.strip(), keep_query=True) if isinstance(image, str) else None

    body_html = render_markdown(body)
    body_text = html_to_text(body_html)
    # A summary made from the body is not read again as its own lede.
    written_summary = summary
    if not summary:
        summary = one_line(body_text, limit=300)

    declared = declared_areas(meta)
    if publisher := _FORCE_SUFFIX.search(one_line(str(raw_title))):
        # "... | Essex Police": another force's release is outside coverage unless it
        # declares an area here.
        declared.append(Declared("publisher", publisher.group("force")))
    decision = decide_areas(gazetteer, AdvisoryText(title, written_summary, body_text), declared)
    warnings += decision_warnings(decision, where, gazetteer)
    force_area = _declared_force(meta, gazetteer)

    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    extra.update({k: v for k, v in {"og": meta.get("og")}.items() if isinstance(v, dict)})
    advisory = AdvisoryInput(
        key=key,
        url=url,
        title=title,
        summary=summary,
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        source=where,
        areas=decision.tags,
        force_area=force_area,
        image_url=image_url,
        status=status,
        priority=priority,
        expires_at=expires_at,
        date_assumed=date_assumed,
        extra=extra,
        decision=decision,
    )
    return ParsedFile(advisory, warnings)


def _declared_force(meta: dict[str, Any], gazetteer: Gazetteer) -> str | None:
    """The slug of a plain ``area:`` value, as the store has kept it (None when absent,
    a list or unknown)."""
    value = meta.get("area")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return gazetteer.resolve(value)
    except UnknownArea:
        return None


def _shown(value: Any) -> str:
    """A value as it may appear in a one-line error: quoted, one line, not too long."""
    return one_line(repr(value), limit=80)


def canonical_url(url: str, *, keep_query: bool = True) -> str | None:
    """Lower-case scheme and host, no fragment; None unless an absolute http(s) URL."""
    if any(ch.isspace() for ch in url) or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not hostname:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host, sep, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    netloc = f"{host.lower()}{sep}{port}" if sep else netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query if keep_query else "", ""))
