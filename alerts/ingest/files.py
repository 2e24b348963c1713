"""Advisory files: a fenced ```yaml front-matter block (or a plain --- block), then
Markdown. ``parse_advisory_file`` turns one into an :class:`AdvisoryInput` or raises
:class:`AdvisoryError` naming the file, the line and the fix. It never raises anything
else, whatever the bytes (a property test holds it to that)."""

from __future__ import annotations

import contextlib
import math
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import yaml

from alerts.areas import Gazetteer
from alerts.errors import AdvisoryError, UnknownArea
from alerts.ingest.build import (
    ParsedFile,
    clean_title,
    finish_advisory,
    published_or_first_seen,
    publisher,
)
from alerts.ingest.dates import LONDON, BadDate, parse_date
from alerts.tagging import Declared, declared_areas
from alerts.text import decode_entities, html_to_text, one_line, render_markdown, strip_control
from alerts.types import AdvisoryInput, Priority, Status

MAX_BYTES = 2_000_000
MAX_TITLE = 1_000
SUFFIXES = (".md", ".markdown")
_FENCE_OPEN = re.compile(r"^(```|~~~)\s*(ya?ml)?\s*$", re.IGNORECASE)
_DASHES = re.compile(r"^---\s*$")
KNOWN_KEYS = {
    "title",
    "url",
    "area",
    "areas",
    "publish",
    "og",
    "date",
    "status",
    "expires",
    "priority",
    "guid",
    "summary",
}


def parse_advisory_file(
    path: Path, gazetteer: Gazetteer, *, now: datetime, zone: ZoneInfo = LONDON
) -> ParsedFile:
    """Read and validate one advisory file. Raises :class:`AdvisoryError` only."""
    where = str(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise AdvisoryError(
            f"cannot read file: {exc.strerror or exc}",
            where=where,
            hint="check the path and that the file exists",
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise AdvisoryError(
            "is a folder, not an advisory file",
            where=where,
            hint="rename the folder so it does not end in .md",
        )
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block or never end: never open one.
        raise AdvisoryError(
            "not a regular file", where=where, hint="advisories are plain UTF-8 Markdown files"
        )
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
            "cannot read file: permission denied",
            where=where,
            hint="make it readable by the user running alerts",
        ) from None
    except OSError as exc:
        raise AdvisoryError(
            f"cannot read file: {exc.strerror or exc}",
            where=where,
            hint="check the file and try again",
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
        raise AdvisoryError(
            "UTF-16 text, not UTF-8", where=where, line=1, hint="save the file as UTF-8"
        )
    if b"\x00" in data:
        raise AdvisoryError(
            "binary file, not an advisory", where=where, hint="advisories are UTF-8 Markdown text"
        )
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
        raise AdvisoryError(
            "empty file", where=where, hint="an advisory starts with a ```yaml block"
        )
    first = lines[start]
    if match := _FENCE_OPEN.match(first.strip()):
        closers = {match.group(1)}
    elif _DASHES.match(first):
        closers = {"---", "..."}
    else:
        raise AdvisoryError(
            "no front matter",
            where=where,
            line=start + 1,
            hint="start the file with a ```yaml block (or a --- block) holding title, url and publish.date",
        )
    for end in range(start + 1, len(lines)):
        if lines[end].strip() in closers:
            return "\n".join(lines[start + 1 : end]), start + 2, "\n".join(lines[end + 1 :])
    raise AdvisoryError(
        "front matter is never closed",
        where=where,
        line=start + 1,
        hint=f"end it with a line '{first.strip()[:3]}'",
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
        raise AdvisoryError(
            f"broken YAML in front matter: {problem}", where=where, line=line, hint=hint
        ) from None
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
    budget = [MAX_NODES - 1]  # the mapping itself is a node
    try:
        return _decode_mapping(meta, budget, 0)
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
        return _decode_mapping(value, budget, depth)
    if isinstance(value, list | tuple | set):
        return [_decode(v, budget, depth + 1) for v in value]
    if isinstance(value, bytes):
        return strip_control(value.decode("utf-8", "replace"))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _decode_mapping(value: dict[Any, Any], budget: list[int], depth: int) -> dict[str, Any]:
    return {strip_control(str(k)): _decode(v, budget, depth + 1) for k, v in value.items()}


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


@dataclass(frozen=True)
class _FrontMatter:
    """The decoded front matter, and where it sits in the file (for errors that name
    the line of the key at fault)."""

    meta: dict[str, Any]
    text: str
    first_line: int
    where: str

    def fail(self, key: str, message: str, hint: str | None = None) -> AdvisoryError:
        return AdvisoryError(message, where=self.where, line=self.line_of(key), hint=hint)

    def line_of(self, key: str) -> int:
        leaf = key.split(".")[-1]
        for offset, line in enumerate(self.text.split("\n")):
            if re.match(rf"^\s*['\"]?{re.escape(leaf)}['\"]?\s*:", line):
                return self.first_line + offset
        return self.first_line

    def get(self, dotted: str) -> Any:
        return _get(self.meta, dotted)


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
    """The advisory the front matter and Markdown body describe: each field read and
    checked in turn, then finished as every source's advisories are."""
    fm = _FrontMatter(meta, front, front_line, where)
    warnings: list[str] = []
    title = _title(fm)
    key, url = _identity(fm)
    published_at, date_assumed = published_or_first_seen(
        _published(fm, zone),
        now,
        f"{where}: no publish.date; taken as published when first seen ({now.astimezone(zone):%H:%M %d/%m/%Y})",
        warnings,
        future=lambda date: (
            f"{where}: publish.date {date.astimezone(zone):%H:%M %d/%m/%Y} is more than a day in the future;"
            f" taken as published when first seen ({now.astimezone(zone):%H:%M %d/%m/%Y})"
        ),
    )
    expires_at = _expires(fm, zone)
    status, priority = _status_and_priority(fm)
    body_html = render_markdown(body)
    image = fm.get("og.image")
    declared, force_area = _declared_areas(fm, gazetteer)
    item = AdvisoryInput(
        key=key,
        url=url,
        title=title,
        summary=one_line(str(fm.get("og.description") or meta.get("summary") or ""), limit=1000),
        body_html=body_html,
        body_text=html_to_text(body_html),
        published_at=published_at,
        source=where,
        force_area=force_area,
        image_url=canonical_url(image.strip(), keep_query=True) if isinstance(image, str) else None,
        status=status,
        priority=priority,
        expires_at=expires_at,
        date_assumed=date_assumed,
        extra=_extra(meta),
    )
    if by := publisher(str(meta.get("title") or "")):
        declared.append(by)
    return finish_advisory(item, declared, gazetteer, where=where, warnings=warnings)


def _title(fm: _FrontMatter) -> str:
    raw = fm.meta.get("title")
    if raw is None or not str(raw).strip():
        raise fm.fail("title", "no title", "add 'title: ...' to the front matter")
    if len(str(raw)) > MAX_TITLE:
        raise fm.fail(
            "title",
            f"the title is {len(str(raw))} characters; at most {MAX_TITLE}",
            "shorten the title",
        )
    title = clean_title(str(raw))
    if not title:
        raise fm.fail(
            "title",
            "the title is empty once the force name is removed",
            "write the advisory's headline",
        )
    return title


def _identity(fm: _FrontMatter) -> tuple[str, str]:
    """The advisory's key (its ``guid``, else its canonical URL) and its URL."""
    raw = fm.meta.get("url")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise fm.fail(
            "url", "no url", "add 'url: https://...', the advisory's page: it is its identity"
        )
    if not isinstance(raw, str):
        raise fm.fail(
            "url", f"url must be an address, got {_shown(raw)}", "write 'url: https://...'"
        )
    url = canonical_url(raw.strip())
    if url is None:
        raise fm.fail(
            "url",
            f"url is not an absolute http(s) address: {_shown(raw)}",
            "write the full address, starting https://",
        )
    guid = fm.meta.get("guid")
    key = one_line(str(guid)) if guid not in (None, "") else url
    if not key or len(key) > 2000:
        raise fm.fail(
            "guid",
            "guid must be 1 to 2000 characters of text",
            "use the upstream id, or remove guid",
        )
    return key, url


def _published(fm: _FrontMatter, zone: ZoneInfo) -> datetime | None:
    value = fm.get("publish.date") or fm.meta.get("date")
    if value in (None, ""):
        return None
    try:
        return parse_date(value, zone)
    except BadDate as exc:
        raise fm.fail("date", str(exc), "write it as 'HH:MM DD/MM/YYYY', local UK time") from None


def _expires(fm: _FrontMatter, zone: ZoneInfo) -> datetime | None:
    value = fm.meta.get("expires")
    if value in (None, ""):
        return None
    try:
        return parse_date(value, zone)
    except BadDate as exc:
        raise fm.fail(
            "expires", f"expires: {exc}", "write it as 'HH:MM DD/MM/YYYY', local UK time"
        ) from None


def _status_and_priority(fm: _FrontMatter) -> tuple[Status, Priority]:
    meta = fm.meta
    try:
        status = Status(str(meta.get("status") or "active").strip().lower())
    except ValueError:
        raise fm.fail(
            "status",
            f"status must be 'active' or 'withdrawn', got {_shown(meta.get('status'))}",
            "fix or remove it",
        ) from None
    try:
        priority = Priority(str(meta.get("priority") or "normal").strip().lower())
    except ValueError:
        raise fm.fail(
            "priority",
            f"priority must be 'urgent' or 'normal', got {_shown(meta.get('priority'))}",
            "fix or remove it",
        ) from None
    return status, priority


def _declared_areas(fm: _FrontMatter, gazetteer: Gazetteer) -> tuple[list[Declared], str | None]:
    """The areas ``area:`` and ``areas:`` declare (strings or YAML lists, as written: the
    area rule resolves them), and the slug of a plain ``area:`` value, as the store
    keeps it (None when absent, a list or unknown)."""
    value = fm.meta.get("area")
    force_area = None
    if isinstance(value, str) and value.strip():
        with contextlib.suppress(UnknownArea):
            force_area = gazetteer.resolve(value)
    return declared_areas(fm.meta), force_area


def _extra(meta: dict[str, Any]) -> dict[str, Any]:
    """Keys this parser does not read, kept as they are (and ``og`` whole)."""
    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    if isinstance(meta.get("og"), dict):
        extra["og"] = meta["og"]
    return extra


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
    return urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", parts.query if keep_query else "", "")
    )
