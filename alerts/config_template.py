"""A commented ``config.yaml`` written from the config model itself, for ``alerts init``.

Every key of :class:`~alerts.config.Config` appears with its default and the ``#:`` comment
above its field in ``alerts/config.py`` (a test fails when a field has none), so a new key
shows up in new config files by itself. Keys left at their default are written commented
out, so a later release's better default still reaches the installation; the keys ``alerts
init`` sets are written plainly.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterator, Mapping
from datetime import time
from pathlib import Path
from types import UnionType
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from alerts.config import Config, SourceConfig

#: Values to show for keys that have no default (in sections that are off by default).
EXAMPLES: Mapping[str, Any] = {
    "delivery.smtp.host": "smtp.example.org",
    "delivery.dkim.domain": "example.org",
    "delivery.dkim.selector": "alerts",
    "delivery.dkim.key_file": "dkim/alerts.pem",
    "delivery.bounces.imap.host": "imap.example.org",
    "delivery.bounces.imap.username": "bounces@example.org",
    "delivery.bounces.imap.password_env": "ALERTS_IMAP_PASSWORD",
    "area_aliases": {},  # the default, as YAML writes it (the model keeps pairs)
    "review.per_source": {},
}
#: A feed source, shown commented out beneath the folder ``alerts init`` sets up.
FEED_EXAMPLE = {
    "feed": "https://www.example.police.uk/news/rss",
    "name": "force-news",
    "area": "kent",
}
INDENT = "  "
#: The source keys that belong to the other kind of source (the model refuses some of them
#: there), left out of each kind's commented list.
SOURCE_KEYS_FOR = {
    "folder": {"area", "timeout", "max_bytes", "redirect_hosts", "poll_minutes"},
    "feed": {"symlink_targets", "watch", "poll_seconds", "settle_seconds"},
}


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comment lines above each field in the model's source, joined."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(model).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        field = re.match(r"(\w+)\s*:", stripped)
        if field and field.group(1) in model.model_fields and pending:
            comments[field.group(1)] = " ".join(pending)
        pending = []
    for name, info in model.model_fields.items():
        if name not in comments and info.description:
            comments[name] = info.description
    return comments


def config_template(settings: Mapping[str, Any]) -> str:
    """The text of a config file: ``settings`` (a nested mapping, as in YAML) written as set,
    every other key of the model commented out at its default, each under its comment."""
    lines = [
        "# Area Alerts configuration, written by 'alerts init'. Relative paths are relative to",
        "# this file. Every key is listed: the ones set here are plain; the rest are commented",
        "# out at their default (remove the '# ' to change one). 'alerts --help' for commands.",
        "",
    ]
    lines += _model_lines(Config, settings, depth=0, active=True, prefix="")
    return "\n".join(lines).rstrip("\n") + "\n"


def _model_lines(
    model: type[BaseModel], settings: Mapping[str, Any], *, depth: int, active: bool, prefix: str
) -> Iterator[str]:
    comments = field_comments(model)
    indent = INDENT * depth
    for name, info in model.model_fields.items():
        if name == "root":
            continue
        key = info.alias or name
        dotted = f"{prefix}{key}"
        on = active and key in settings
        mark = "" if on else "# "
        comment = comments.get(name)
        if comment:
            yield from (f"{indent}# {part}" for part in _wrap(comment, 88 - len(indent)))
        section = _section_model(info)
        # The top-level list of sources (review.sources is a plain list of names).
        sources = model is Config and name == "sources"
        if section is not None and not sources:
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            yield f"{indent}{mark}{key}:" + (
                "" if default is not None or on else "            # off by default"
            )
            yield from _model_lines(
                section,
                settings.get(key, {}) if on else {},
                depth=depth + 1,
                active=on,
                prefix=f"{dotted}.",
            )
            if depth == 0:
                yield ""
            continue
        if sources:
            yield from _source_lines(settings.get(key, []) if on else [], indent, on)
            yield ""
            continue
        value = settings[key] if on else _default(info, dotted)
        yield f"{indent}{mark}{key}: {_scalar(value)}"
        if depth == 0:
            yield ""


def _source_lines(sources: list[Mapping[str, Any]], indent: str, on: bool) -> Iterator[str]:
    """Each source set, with the other keys a folder takes commented out beneath it; then a
    feed, commented out, with the keys a feed takes."""
    comments = field_comments(SourceConfig)

    def others(kind: str, given: Mapping[str, Any], prefix: str) -> Iterator[str]:
        for name, info in SourceConfig.model_fields.items():
            if name in given or name in ("path", "feed") or name in SOURCE_KEYS_FOR[kind]:
                continue
            for part in _wrap(comments.get(name, ""), 84):
                yield f"{prefix}# {part}"
            yield f"{prefix}# {name}: {_scalar(info.get_default(call_default_factory=True))}"

    yield f"{indent}{'' if on and sources else '# '}sources:"
    for source in sources:
        for position, (key, value) in enumerate(source.items()):
            yield f"{indent}{'  - ' if position == 0 else '    '}{key}: {_scalar(value)}"
        kind = "folder" if "path" in source else "feed"
        yield from others(kind, source, f"{indent}    ")
    yield f"{indent}  # A feed (each source has either 'path', a folder, or 'feed'):"
    for position, (key, value) in enumerate(FEED_EXAMPLE.items()):
        yield f"{indent}  # {'- ' if position == 0 else '  '}{key}: {_scalar(value)}"
    yield from others("feed", FEED_EXAMPLE, f"{indent}  #   ")


def _section_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds (``SmtpConfig`` for ``SmtpConfig | None``), if any."""
    annotation = info.annotation
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        candidates = list(typing.get_args(annotation))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    if typing.get_origin(annotation) is tuple:
        inner = typing.get_args(annotation)[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


def _default(info: FieldInfo, dotted: str) -> Any:
    if dotted in EXAMPLES:
        return EXAMPLES[dotted]
    if info.is_required():
        return "..."
    return info.get_default(call_default_factory=True)


def _scalar(value: Any) -> str:
    """A value as YAML on one line (flow style for lists and mappings)."""
    if isinstance(value, Path):
        value = str(value)
    elif isinstance(value, time):
        value = value.strftime("%H:%M")
    elif isinstance(value, tuple):
        value = [_plain(item) for item in value]
        if value and all(isinstance(item, list) and len(item) == 2 for item in value):
            value = dict(value)  # area_aliases are kept as pairs
    if value is None:
        return "null"
    text = yaml.safe_dump(
        value, default_flow_style=True, width=1000, sort_keys=False, allow_unicode=True
    )
    return text.removesuffix("\n...\n").strip()


def _plain(item: Any) -> Any:
    if isinstance(item, tuple):
        return [_plain(part) for part in item]
    return str(item) if isinstance(item, Path) else item


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.replace("``", "").split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines
