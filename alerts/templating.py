"""The one Jinja2 environment factory, for the web pages and both kinds of email.

Templates come from the package (``alerts/templates``, shipped with every install); an
operator's folder (``templates:`` in config.yaml) is searched first, so it overrides single
templates and the rest still come from the package.

Autoescaping follows the file name: on for ``.html`` and ``.xml`` (and for templates
made from strings), off for ``.txt``, so one environment serves an email's HTML and
plain-text parts. ``StrictUndefined``: a misspelt variable fails in the tests instead
of rendering as nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

#: The templates that ship with the package (in a checkout, a link to the top-level templates/).
PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"


def template_folders(operator: Path | None, kind: str) -> tuple[Path, ...]:
    """Where ``kind`` (``email`` or ``web``) templates are looked up, first match wins: the
    operator's ``<templates>/<kind>`` when configured, then the package's."""
    package = PACKAGE_TEMPLATES / kind
    return (operator / kind, package) if operator is not None else (package,)


def find_template(folders: Sequence[Path], name: str) -> Path | None:
    """The file that serves template ``name`` (the first folder holding it), or None."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def template_environment(
    folders: Path | Sequence[Path], *, filters: Mapping[str, Callable[..., Any]] | None = None
) -> Environment:
    """An environment loading templates from ``folders`` (searched in order), with ``filters``
    added. Callers keep the one they make: compiled templates are cached inside it."""
    env = Environment(
        # A FileSystemLoader with several folders is Jinja's ChoiceLoader over each: a
        # template the operator's folder lacks comes from the next one.
        loader=FileSystemLoader([folders] if isinstance(folders, Path) else list(folders)),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters or {})
    return env
