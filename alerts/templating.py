"""The one Jinja2 environment factory, for the web pages and both kinds of email.

Autoescaping follows the file name: on for ``.html`` and ``.xml`` (and for templates
made from strings), off for ``.txt``, so one environment serves an email's HTML and
plain-text parts. ``StrictUndefined``: a misspelt variable fails in the tests instead
of rendering as nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def template_environment(
    directory: Path, *, filters: Mapping[str, Callable[..., Any]] | None = None
) -> Environment:
    """An environment loading templates from ``directory``, with ``filters`` added.
    Callers keep the one they make: compiled templates are cached inside it."""
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters or {})
    return env
