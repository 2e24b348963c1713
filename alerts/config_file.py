"""The config file around the model: a YAML loader that refuses a key given twice, the
line a key is on, one line per validation error naming the key (with the nearest known key
for a misspelt one), and the file's relative paths made absolute."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from alerts.config import Config


class DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping."""


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (the
    plain loader keeps the last silently, so a setting further up the file does nothing)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKey(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def line_of(source: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the key at ``loc`` in the YAML text (or of its nearest parent)."""
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def describe(exc: ValidationError, model: type[BaseModel]) -> tuple[str, tuple[Any, ...]]:
    """The first problem as one line naming the key (the nearest known key for an unknown
    one), and where it is."""
    # An unknown key explains the rest (a misspelt required key is also "missing").
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key = _dotted(first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown key '{key}'"
        hint = "check the spelling against the example config.yaml"
        close = difflib.get_close_matches(
            str(first["loc"][-1]), keys_at(model, first["loc"][:-1]), n=1, cutoff=0.6
        )
        if close:
            hint = f"did you mean '{close[0]}'?"
    elif kind == "missing":
        message = f"missing required key '{key}'"
        hint = None
    else:
        shown = first.get("input")
        message = f"'{key}': {first['msg']}"
        if not isinstance(shown, dict | list) and kind != "value_error":
            message += f" (got {shown!r})"
        hint = None
    message = message.replace("Value error, ", "").replace("a valid tuple", "a list")
    if len(errors) > 1:
        message += f" [and {len(errors) - 1} more problem(s)]"
    return (f"{message}; {hint}" if hint else message), tuple(first["loc"])


def keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the config model accepts at ``loc`` (a mapping inside the config)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        candidates = [field.annotation, *get_args(field.annotation)]
        candidates += [inner for arg in candidates for inner in get_args(arg)]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return [field.alias or name for name, field in model.model_fields.items() if name != "root"]


def _dotted(loc: tuple[Any, ...]) -> str:
    """``("sources", 0, "pth")`` -> ``sources[0].pth``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def resolve_paths(config: Config, root: Path) -> Config:
    """``config`` with every path in it relative to ``root`` (the config file's folder) made absolute."""

    def absolute(path: Path) -> Path:
        return path if path.is_absolute() else (root / path).resolve()

    database = config.database
    match = re.match(r"^(sqlite(?:\+\w+)?:///)(.+)$", database)
    if match and match.group(2) != ":memory:" and not match.group(2).startswith("/"):
        database = match.group(1) + str(absolute(Path(match.group(2))))
    sources = tuple(
        source.model_copy(
            update={
                "path": absolute(source.path),
                "symlink_targets": tuple(map(absolute, source.symlink_targets)),
            }
        )
        if source.path
        else source
        for source in config.sources
    )
    delivery = config.delivery.model_copy(update={"maildir": absolute(config.delivery.maildir)})
    if delivery.dkim:
        delivery = delivery.model_copy(
            update={
                "dkim": delivery.dkim.model_copy(
                    update={
                        "key_file": absolute(delivery.dkim.key_file),
                        "ed25519_key_file": delivery.dkim.ed25519_key_file
                        and absolute(delivery.dkim.ed25519_key_file),
                    }
                )
            }
        )
    bounces = delivery.bounces
    if bounces.maildir:
        bounces = bounces.model_copy(update={"maildir": absolute(bounces.maildir)})
    if bounces.imap and bounces.imap.ca_file:
        imap = bounces.imap.model_copy(update={"ca_file": absolute(bounces.imap.ca_file)})
        bounces = bounces.model_copy(update={"imap": imap})
    delivery = delivery.model_copy(update={"bounces": bounces})
    if delivery.smtp and delivery.smtp.ca_file:
        smtp = delivery.smtp.model_copy(update={"ca_file": absolute(delivery.smtp.ca_file)})
        delivery = delivery.model_copy(update={"smtp": smtp})
    gazetteer = config.gazetteer
    if gazetteer.endswith((".yaml", ".yml")):
        gazetteer = str(absolute(Path(gazetteer)))
    return config.model_copy(
        update={
            "database": database,
            "sources": sources,
            "templates": config.templates and absolute(config.templates),
            "feeds": config.feeds.model_copy(update={"out": absolute(config.feeds.out)}),
            "delivery": delivery,
            "gazetteer": gazetteer,
            "security": config.security.model_copy(
                update={"secret_key_file": absolute(config.security.secret_key_file)}
            ),
        }
    )
