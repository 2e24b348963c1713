"""The gazetteer (area tree, aliases, postcode districts), tagging of text, and the one
matching rule: does a subscription to some areas want an advisory about others?

Areas form a tree: force > district > town; postcode districts hang under the district
they belong to and stand for it. The data is a YAML file (``alerts/gazetteers/kent.yaml``),
so another force is a new file, not new code.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts.errors import GazetteerError, UnknownArea
from alerts.types import AreaKind

BUILTIN_DIR = Path(__file__).parent / "gazetteers"

# A place name followed by one of these names an institution or a street, not the place:
# "Kent Police", "Maidstone Crown Court", "Dover Road" (which is in Folkestone).
# Institutions in any case ("KENT POLICE"); street words only capitalised, since "in Deal
# close to the sea" is the place.
_INSTITUTIONS = (
    r"Police|Constabulary|Crown\s+Court|Magistrates'?\s+Court|County\s+Council|Fire\s+and\s+Rescue"
)
_STREETS = ("Road", "Rd", "Street", "St", "Lane", "Avenue", "Drive", "Close", "Crescent", "Gardens", "Terrace")
_NOT_A_PLACE_AFTER = rf"(?i:{_INSTITUTIONS})|" + "|".join(w for s in _STREETS for w in (s, s.upper()))
# Names that are also ordinary words ("Deal", "Sandwich", "Hoo", "Wye") count only after a
# preposition of place ("in Deal", "near Sandwich", "from Wye") or a comma ("Beach Street, Deal").
_PLACE_PREPOSITIONS = r"in|at|near|from|around|outside|across|to|of|between|and|into|towards"
_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d{1,2}[A-Z]?)(?:\s+\d[A-Z]{2})?\b")
# What a person types into a form: "ME4", "ME4 4TR", "me44tr" (the inward code is always
# a digit and two letters, so "ME14TR" is ME1 4TR).
_TYPED_POSTCODE = re.compile(r"([A-Z]{1,2}\d{1,2}[A-Z]?)\s*(?:\d[A-Z]{2})?")


@dataclass(frozen=True)
class AreaNode:
    slug: str
    name: str
    kind: AreaKind
    parent: str | None
    aliases: tuple[str, ...] = ()
    ambiguous: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "kind": self.kind.value,
            "parent": self.parent,
            "aliases": list(self.aliases),
        }


class Gazetteer:
    """An area tree loaded from data. Build one with :func:`load_gazetteer`."""

    def __init__(self, nodes: Iterable[AreaNode]):
        self.nodes: dict[str, AreaNode] = {}
        for node in nodes:
            self.nodes[node.slug] = node
        self._children: dict[str, list[str]] = {slug: [] for slug in self.nodes}
        for node in self.nodes.values():
            if node.parent is not None:
                self._children[node.parent].append(node.slug)
        self._names: dict[str, str] = {}
        for node in self.nodes.values():
            for name in (node.slug, node.name, *node.aliases):
                self._names[_fold(name)] = node.slug
        self._place_pattern, self._place_slugs = self._compile_places()

    # -- the tree ---------------------------------------------------------------

    @property
    def root(self) -> AreaNode:
        return next(node for node in self.nodes.values() if node.parent is None)

    def __contains__(self, slug: object) -> bool:
        return slug in self.nodes

    def __iter__(self) -> Iterator[AreaNode]:
        """Nodes in tree order: each parent before its children, children by name."""

        def walk(slug: str) -> Iterator[AreaNode]:
            yield self.nodes[slug]
            for child in sorted(self._children[slug], key=self._order):
                yield from walk(child)

        yield from walk(self.root.slug)

    def _order(self, slug: str) -> tuple[bool, tuple[Any, ...]]:
        node = self.nodes[slug]
        return (node.kind is AreaKind.POSTCODE, _natural(node.name))

    def node(self, slug: str) -> AreaNode:
        try:
            return self.nodes[slug]
        except KeyError:
            raise self._unknown(slug) from None

    def name_of(self, slug: str) -> str:
        """The area's name as residents know it ('Medway'), or the slug itself for an area
        this gazetteer does not hold (one stored under an older gazetteer)."""
        node = self.nodes.get(slug)
        return node.name if node else slug

    def names_of(self, slugs: Iterable[str]) -> list[str]:
        return [self.name_of(slug) for slug in slugs]

    def ancestors(self, slug: str) -> list[str]:
        """Parent, grandparent, ... up to the force."""
        chain = []
        parent = self.node(slug).parent
        while parent is not None:
            chain.append(parent)
            parent = self.nodes[parent].parent
        return chain

    def descendants(self, slug: str) -> set[str]:
        found: set[str] = set()
        stack = list(self._children[self.node(slug).slug])
        while stack:
            child = stack.pop()
            found.add(child)
            stack.extend(self._children[child])
        return found

    def canonical(self, slug: str) -> str:
        """A postcode district stands for its district; every other area for itself."""
        node = self.node(slug)
        if node.kind is AreaKind.POSTCODE and node.parent is not None:
            return node.parent
        return slug

    def feed_areas(self) -> list[AreaNode]:
        """The areas that get feeds of their own: every node but postcode districts."""
        return [node for node in self if node.kind is not AreaKind.POSTCODE]

    # -- names ------------------------------------------------------------------

    def resolve(self, text: str) -> str:
        """The canonical slug for a slug, name, alias, postcode district or full postcode.

        ``"ME4"`` and ``"ME4 4TR"`` resolve to ``medway``. Raises :class:`UnknownArea`.
        """
        folded = _fold(text)
        slug = self._names.get(folded)
        if slug is None:
            match = _TYPED_POSTCODE.fullmatch(text.strip().upper())
            if match:
                slug = self._names.get(_fold(match.group(1)))
        if slug is None:
            raise self._unknown(text)
        return self.canonical(slug)

    def _unknown(self, text: str) -> UnknownArea:
        close = difflib.get_close_matches(_fold(text), list(self._names), n=3, cutoff=0.75)
        hint = "run 'alerts areas' for the list"
        if close:
            hint = "did you mean " + " or ".join(repr(self._names[c]) for c in close) + "? " + hint
        return UnknownArea(f"unknown area {text!r}", hint=hint)

    # -- tagging ----------------------------------------------------------------

    def _compile_places(self) -> tuple[re.Pattern[str], dict[str, str]]:
        plain: dict[str, str] = {}
        ambiguous: dict[str, str] = {}
        for node in self.nodes.values():
            if node.kind is AreaKind.POSTCODE:
                continue
            for name in (node.name, *node.aliases):
                # Only a one-word name is ever an ordinary word: "Hoo St Werburgh" is not.
                vague = node.ambiguous and " " not in name.strip()
                (ambiguous if vague else plain)[name] = node.slug

        def alternation(names: Iterable[str]) -> str:
            variants = {v for name in names for v in (name, name.upper())}
            ordered = sorted(variants, key=len, reverse=True)  # longest first: "Tunbridge Wells"
            return "|".join(re.escape(name).replace(r"\ ", r"\s+") for name in ordered) or "(?!)"

        pattern = re.compile(
            rf"(?:(?<![\w'])(?P<plain>{alternation(plain)})"
            # ... or after a comma, as in an address: "High Street, Deal".
            rf"|(?:(?<![\w'])(?i:{_PLACE_PREPOSITIONS})\s+|,[ \t]*)(?P<ambiguous>{alternation(ambiguous)})"
            # "How To Deal With ..." in a title-case headline is the verb.
            rf"(?!\w)(?!\s+(?i:with)\b))"
            rf"(?!\w)(?!\s+(?:{_NOT_A_PLACE_AFTER})\b)"
        )
        slugs = {re.sub(r"\s+", " ", k): v for k, v in {**plain, **ambiguous}.items()}
        slugs |= {k.upper(): v for k, v in slugs.items()}
        return pattern, slugs

    def tag_text(self, text: str) -> set[str]:
        """Canonical slugs of the places and postcode districts named in ``text``."""
        found: set[str] = set()
        for match in self._place_pattern.finditer(text):
            name = re.sub(r"\s+", " ", match.group("plain") or match.group("ambiguous"))
            found.add(self._place_slugs[name])
        for match in _POSTCODE.finditer(text):
            slug = self._names.get(_fold(match.group(1)))
            if slug is not None and self.nodes[slug].kind is AreaKind.POSTCODE:
                found.add(self.canonical(slug))
        return found

    def tag_advisory(self, declared: Iterable[str], *texts: str) -> tuple[set[str], bool]:
        """Every area of an advisory: the ``declared`` slugs plus the places named in
        ``texts`` (title, summary, body). None at all means force-wide: the root area,
        and ``True`` as the second value so the caller can warn."""
        areas = set(declared)
        areas |= self.tag_text("\n".join(texts))
        if areas:
            return areas, False
        return {self.root.slug}, True

    def most_specific(self, tags: Iterable[str]) -> set[str]:
        """Drop every tag that is an ancestor of another: {kent, medway} -> {medway}."""
        tags = {self.canonical(tag) for tag in tags}
        covered = {ancestor for tag in tags for ancestor in self.ancestors(tag)}
        return tags - covered

    # -- the matching rule --------------------------------------------------------

    def related(self, slug: str) -> set[str]:
        """The areas an advisory may concern for a subscriber to ``slug`` to get it:
        the area itself, every area containing it, and every area within it."""
        slug = self.canonical(slug)
        return {slug, *self.ancestors(slug), *self.descendants(slug)}

    def matching_areas(self, subscription: Iterable[str]) -> set[str]:
        """Union of :meth:`related` over a subscription's areas, for a store query."""
        found: set[str] = set()
        for slug in subscription:
            found |= self.related(slug)
        return found

    def wants(self, subscription: Iterable[str], advisory_areas: Iterable[str]) -> bool:
        """THE matching rule: does a subscriber to ``subscription`` get an advisory that
        concerns ``advisory_areas``? Yes when one of the advisory's areas contains one
        of the subscribed areas or lies within it. Feeds, digests and the web use this
        (or :meth:`matching_areas`, which is the same rule as a set)."""
        return not self.matching_areas(subscription).isdisjoint(
            self.canonical(area) for area in advisory_areas
        )


def _fold(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().casefold())


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.casefold()))


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")


@functools.lru_cache(maxsize=8)
def load_gazetteer(name_or_path: str = "kent") -> Gazetteer:
    """Load a built-in gazetteer by name, or one from a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        path = BUILTIN_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            builtin = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
            raise GazetteerError(
                f"no built-in gazetteer {name_or_path!r}",
                where="gazetteer",
                hint=f"use one of {', '.join(builtin)} or the path of a .yaml file",
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GazetteerError(
            f"cannot read the gazetteer {path}: {exc.strerror or exc}",
            where="gazetteer",
            hint="set 'gazetteer:' in config.yaml to a built-in name such as kent, or the path of a gazetteer .yaml file",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc
        raise GazetteerError(f"invalid YAML: {problem}", where=f"{path}:{mark.line + 1}" if mark else str(path)) from None
    return Gazetteer(_parse_gazetteer(data, str(path)))


def _parse_gazetteer(data: Any, where: str) -> list[AreaNode]:
    def fail(message: str) -> GazetteerError:
        return GazetteerError(message, where=where)

    if not isinstance(data, dict) or "force" not in data or "districts" not in data:
        raise fail("expected top-level keys 'force' and 'districts'")
    nodes: list[AreaNode] = []
    seen: dict[str, str] = {}

    def add(entry: Any, kind: AreaKind, parent: str | None) -> str:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise fail(f"every {kind.value} needs a 'name' (under {parent or 'the top'})")
        name = str(entry["name"])
        slug = str(entry.get("slug") or slugify(name))
        listed = entry.get("aliases") or []
        if not isinstance(listed, list):
            raise fail(f"aliases of {name!r} must be a list")
        aliases = tuple(str(alias) for alias in listed)
        for label in (slug, name, *aliases):
            key = _fold(label)
            if key in seen and seen[key] != slug:
                raise fail(f"{label!r} names both {seen[key]!r} and {slug!r}")
            seen[key] = slug
        nodes.append(AreaNode(slug, name, kind, parent, aliases, bool(entry.get("ambiguous"))))
        return slug

    force = add(data["force"], AreaKind.FORCE, None)
    if not isinstance(data["districts"], list):
        raise fail("'districts' must be a list")
    for district in data["districts"]:
        slug = add(district, AreaKind.DISTRICT, force)
        towns, codes = district.get("towns") or [], district.get("postcodes") or []
        if not isinstance(towns, list) or not isinstance(codes, list):
            raise fail(f"towns and postcodes of {slug!r} must be lists")
        for town in towns:
            add(town, AreaKind.TOWN, slug)
        for code in codes:
            code = str(code).upper()
            add({"name": code, "slug": code.lower()}, AreaKind.POSTCODE, slug)
    return nodes
