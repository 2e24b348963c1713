"""The gazetteer (area tree, aliases, postcode districts), names of places as they are
written, and the one matching rule: does a subscription to some areas want an advisory
about others?

Areas form a tree: force > district > town > parish or village; postcode districts hang
under the district they belong to and stand for the town they lie in, or for the
district where they span several towns. The data is a YAML file
(``alerts/gazetteers/kent.yaml``), so another force is a new file, not new code. Deciding
which areas an advisory concerns from its text is :mod:`alerts.tagging`.

It runs past 500 lines because the tree, its names and the matching rule share one set of
lookups (slugs, aliases, postcode districts, homonyms); kept together, the rule that
feeds, digests and pages all use can be read in one place.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from alerts.errors import GazetteerError, UnknownArea
from alerts.types import AreaKind

BUILTIN_DIR = Path(__file__).parent / "gazetteers"

# What a person types into a form: "ME4", "ME4 4TR", "me44tr" (the inward code is always
# a digit and two letters, so "ME14TR" is ME1 4TR).
_TYPED_POSTCODE = re.compile(r"([A-Z]{1,2}\d{1,2}[A-Z]?)\s*(?:\d[A-Z]{2})?")
# A word as the tagger and the resolver compare it: letters and digits, with apostrophes
# inside ("King's", "King’s"); "&" is a word too, read as "and".
_WORD = re.compile(r"[^\W_]+(?:['’‘`´][^\W_]+)*|&")
_APOSTROPHES = re.compile(r"['’‘`´]")


@dataclass(frozen=True)
class AreaNode:
    slug: str
    name: str
    kind: AreaKind
    parent: str | None
    aliases: tuple[str, ...] = ()
    #: The name is also an ordinary word ("Deal", "Wye"): it counts only after a
    #: preposition of place or a comma.
    common_word: bool = False
    #: Names this place shares with another place in the force area ("Minster"): they
    #: resolve by context or not at all.
    homonyms: tuple[str, ...] = ()
    #: Names of this place that are better known as places outside the force area
    #: ("Leeds"): they count only with context that puts them here.
    elsewhere: tuple[str, ...] = ()
    #: For a postcode district: the town it lies in, when one town covers it.
    stands_for: str | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "kind": self.kind.value,
            "parent": self.parent,
            "aliases": list(self.aliases),
        }
        if self.kind is AreaKind.POSTCODE:
            shown["stands_for"] = self.stands_for or self.parent
        return shown


@dataclass(frozen=True)
class PlaceName:
    """One way of writing a place's name, as the tagger looks it up."""

    name: str
    #: Every place with this name: more than one for a homonym ("Minster").
    slugs: tuple[str, ...]
    common_word: bool = False
    elsewhere: bool = False


@dataclass(frozen=True)
class OutsideName:
    """A place outside the force area ("Chelmsford", "Essex") or another police force
    ("Essex Police", "the Met"), from the gazetteer's ``outside:``. Text naming these
    and nothing in the force area is another force's news."""

    name: str
    force: bool = False
    #: Also an ordinary word or a surname ("Reading", "Sutton"): counts only after a
    #: preposition or a comma.
    common_word: bool = False


class Gazetteer:
    """An area tree loaded from data. Build one with :func:`load_gazetteer`."""

    def __init__(
        self,
        nodes: Iterable[AreaNode],
        *,
        not_places: Iterable[str] = (),
        outside: Iterable[OutsideName] = (),
        sites: Iterable[str] = (),
        outside_sites: Iterable[str] = (),
    ):
        self.nodes: dict[str, AreaNode] = {}
        for node in nodes:
            self.nodes[node.slug] = node
        self._not_places = tuple(not_places)
        self._outside = tuple(outside)
        #: Web sites the force publishes on, and publishers elsewhere (host suffixes).
        self.sites = tuple(s.casefold() for s in sites)
        self.outside_sites = tuple(s.casefold() for s in outside_sites)
        self._children: dict[str, list[str]] = {slug: [] for slug in self.nodes}
        for node in self.nodes.values():
            if node.parent is not None:
                self._children[node.parent].append(node.slug)
        self._names: dict[str, str] = {}
        self._homonyms: dict[str, list[str]] = {}
        for node in self.nodes.values():
            shared = {fold(name) for name in node.homonyms}
            for name in (node.slug, node.name, *node.aliases):
                if fold(name) not in shared:
                    self._names[fold(name)] = node.slug
            for name in node.homonyms:
                self._homonyms.setdefault(fold(name), []).append(node.slug)

    def with_aliases(self, aliases: Mapping[str, str]) -> Gazetteer:
        """A copy in which each name in ``aliases`` also means the area it maps to (an
        operator's ``area_aliases:``, e.g. ``National: kent``). Raises :class:`UnknownArea`
        for a target the gazetteer lacks and :class:`GazetteerError` for a name it
        already gives another area."""
        if not aliases:
            return self
        extra: dict[str, list[str]] = {}
        for name, target in aliases.items():
            slug = self.resolve(target)
            known = self._names.get(fold(name))
            if known is not None and known != slug:
                raise GazetteerError(
                    f"area alias {name!r} already names {known!r}",
                    where="area_aliases",
                    hint="remove it, or map it to that area",
                )
            extra.setdefault(slug, []).append(str(name))
        nodes = [
            replace(node, aliases=(*node.aliases, *extra[node.slug]))
            if node.slug in extra
            else node
            for node in self.nodes.values()
        ]
        return Gazetteer(
            nodes,
            not_places=self._not_places,
            outside=self._outside,
            sites=self.sites,
            outside_sites=self.outside_sites,
        )

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
        """A postcode district stands for the town it lies in, or its district where it
        spans several towns; every other area stands for itself."""
        node = self.node(slug)
        if node.kind is AreaKind.POSTCODE and node.parent is not None:
            return node.stands_for or node.parent
        return slug

    def feed_areas(self) -> list[AreaNode]:
        """The areas that get feeds of their own: the force, districts and towns (a
        village's advisories are in its town's or district's feed)."""
        return [node for node in self if node.kind not in (AreaKind.POSTCODE, AreaKind.VILLAGE)]

    def feed_area(self, slug: str) -> str:
        """The area whose feed carries ``slug``'s advisories: itself, or for a postcode
        district its town or district, for a village its town or district."""
        area = self.canonical(slug)
        while self.nodes[area].kind is AreaKind.VILLAGE and self.nodes[area].parent is not None:
            area = self.nodes[area].parent or area
        return area

    # -- names ------------------------------------------------------------------

    def resolve(self, text: str) -> str:
        """The canonical slug for a slug, name, alias, postcode district or full postcode.

        ``"ME4"`` and ``"ME4 4TR"`` resolve to ``medway``. Raises :class:`UnknownArea`.
        """
        return self.canonical(self.lookup(text))

    def lookup(self, text: str) -> str:
        """The area a text names, before a postcode district stands for its town or
        district (``"ME5"`` -> the postcode district ``me5``). Raises :class:`UnknownArea`."""
        slug = self._names.get(fold(text))
        if slug is None:
            match = _TYPED_POSTCODE.fullmatch(text.strip().upper())
            if match:
                slug = self._names.get(fold(match.group(1)))
        if slug is None:
            raise self._unknown(text)
        return slug

    def _unknown(self, text: str) -> UnknownArea:
        places = self._homonyms.get(fold(text))
        if places:
            named = " or ".join(f"{self.nodes[s].name} [{s}]" for s in places)
            return UnknownArea(
                f"{text!r} names more than one place",
                hint=f"say which: {named}",
                asked=text,
                homonyms=tuple(places),
            )
        close = difflib.get_close_matches(fold(text), list(self._names), n=3, cutoff=0.75)
        suggestions = tuple(dict.fromkeys(self._names[c] for c in close))
        hint = "run 'alerts areas' for the list"
        if suggestions:
            hint = "did you mean " + " or ".join(repr(slug) for slug in suggestions) + "? " + hint
        return UnknownArea(f"unknown area {text!r}", hint=hint, asked=text, suggestions=suggestions)

    # -- names in text ------------------------------------------------------------

    @functools.cached_property
    def place_names(self) -> dict[tuple[str, ...], PlaceName]:
        """Every name of every place and postcode district as folded words (see
        :func:`fold_words`), for finding places in text: ``("kings", "hill")``."""
        found: dict[tuple[str, ...], PlaceName] = {}
        for node in self.nodes.values():
            for name in (node.name, *node.aliases, *node.homonyms):
                words = fold_words(name)
                if not words:
                    continue
                old = found.get(words)
                slugs = (
                    (*old.slugs, node.slug) if old and node.slug not in old.slugs else (node.slug,)
                )
                common = node.common_word and len(words) == 1
                found[words] = PlaceName(
                    name=name,
                    slugs=slugs,
                    common_word=common or bool(old and old.common_word),
                    elsewhere=name in node.elsewhere or bool(old and old.elsewhere),
                )
        return found

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes whenever the data could change what a text is tagged with."""
        payload = repr(
            (
                sorted(self.nodes.items()),
                sorted(self._not_places),
                sorted(self._outside, key=repr),
                self.sites,
                self.outside_sites,
            )
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:32]

    @functools.cached_property
    def not_places(self) -> frozenset[tuple[str, ...]]:
        """Names that contain a place's name but are somewhere else ("Charing Cross")."""
        return frozenset(fold_words(name) for name in self._not_places)

    @functools.cached_property
    def outside_names(self) -> dict[tuple[str, ...], OutsideName]:
        """Places outside the force area and other forces, as folded words. A name that
        is also a place here ("Rainham") is in both this and :attr:`place_names`."""
        found: dict[tuple[str, ...], OutsideName] = {}
        for item in self._outside:
            words = fold_words(item.name)
            if words:
                found.setdefault(words, item)
        return found

    @functools.cached_property
    def shared_names(self) -> frozenset[tuple[str, ...]]:
        """Names of places here that are places elsewhere too ("Rainham", "Hythe")."""
        return frozenset(self.outside_names) & frozenset(self.place_names)

    @functools.cached_property
    def first_words(self) -> dict[str, int]:
        """The first word of every name (and not-place, and name elsewhere), with the
        most words a name starting with it has: the tagger tries only those lengths."""
        found: dict[str, int] = {}
        for words in [*self.place_names, *self.not_places, *self.outside_names]:
            found[words[0]] = max(found.get(words[0], 0), len(words))
        return found

    def district_of(self, slug: str) -> str | None:
        """The district an area lies in (itself for a district); None for the force."""
        chain = [self.canonical(slug), *self.ancestors(self.canonical(slug))]
        for area in chain:
            if self.nodes[area].kind is AreaKind.DISTRICT:
                return area
        return None

    def most_specific(self, tags: Iterable[str]) -> set[str]:
        """Drop every tag that is an ancestor of another: {kent, medway} -> {medway}."""
        tags = {self.canonical(tag) for tag in tags}
        covered = {ancestor for tag in tags for ancestor in self.ancestors(tag)}
        return tags - covered

    def least_specific(self, tags: Iterable[str]) -> set[str]:
        """Drop every tag that lies within another: {medway, chatham} -> {medway}."""
        tags = {self.canonical(tag) for tag in tags}
        return {tag for tag in tags if tags.isdisjoint(self.ancestors(tag))}

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


def fold(text: str) -> str:
    """A name as compared: case, apostrophes, hyphens and spaces, "Saint" and "St" do
    not matter ("King’s Hill" = "Kings Hill", "Sutton-at-Hone" = "Sutton at Hone")."""
    words = fold_words(text)
    return " ".join(words) if words else re.sub(r"[\s_-]+", " ", text.strip().casefold())


def fold_words(text: str) -> tuple[str, ...]:
    """The words of a name as compared (see :func:`fold`)."""
    return tuple(fold_word(word) for word in _WORD.findall(text))


def fold_word(word: str) -> str:
    word = _APOSTROPHES.sub("", word.casefold())
    return {"saint": "st", "&": "and"}.get(word, word)


def words_of(text: str) -> Iterator[re.Match[str]]:
    """The words of ``text`` with their places in it (see :func:`fold_word`)."""
    return _WORD.finditer(text)


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.casefold())
    )


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
        raise GazetteerError(
            f"invalid YAML: {problem}", where=f"{path}:{mark.line + 1}" if mark else str(path)
        ) from None
    return _parse_gazetteer(data, str(path))


def _parse_gazetteer(data: Any, where: str) -> Gazetteer:
    def fail(message: str) -> GazetteerError:
        return GazetteerError(message, where=where)

    if not isinstance(data, dict) or "force" not in data or "districts" not in data:
        raise fail("expected top-level keys 'force' and 'districts'")
    nodes: list[AreaNode] = []
    seen: dict[str, str] = {}
    shared: dict[str, list[str]] = {}

    def names(entry: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
        listed = entry.get(key) or []
        if not isinstance(listed, list):
            raise fail(f"{key} of {name!r} must be a list")
        return tuple(str(item) for item in listed)

    def add(entry: Any, kind: AreaKind, parent: str | None) -> str:
        if isinstance(entry, str) and kind is AreaKind.VILLAGE:
            entry = {"name": entry}
        if not isinstance(entry, dict) or not entry.get("name"):
            raise fail(f"every {kind.value} needs a 'name' (under {parent or 'the top'})")
        name = str(entry["name"])
        slug = str(entry.get("slug") or slugify(name))
        aliases, homonyms = names(entry, "aliases", name), names(entry, "homonyms", name)
        elsewhere = names(entry, "elsewhere", name)
        shared_here = {fold(label) for label in homonyms}
        for label in (slug, name, *aliases):
            key = fold(label)
            if key in shared_here:
                continue
            if key in seen and seen[key] != slug:
                raise fail(
                    f"{label!r} names both {seen[key]!r} and {slug!r}"
                    " (list a name two places share under 'homonyms:' of both)"
                )
            seen[key] = slug
        for label in homonyms:
            shared.setdefault(fold(label), []).append(slug)
        common = bool(entry.get("common_word") or entry.get("ambiguous"))
        nodes.append(AreaNode(slug, name, kind, parent, aliases, common, homonyms, elsewhere))
        return slug

    def add_places(entry: dict[str, Any], parent: str, key: str, kind: AreaKind) -> None:
        listed = entry.get(key) or []
        if not isinstance(listed, list):
            raise fail(f"{key} of {parent!r} must be a list")
        for child in listed:
            slug = add(child, kind, parent)
            if kind is AreaKind.TOWN and isinstance(child, dict):
                add_places(child, slug, "places", AreaKind.VILLAGE)

    force = add(data["force"], AreaKind.FORCE, None)
    if not isinstance(data["districts"], list):
        raise fail("'districts' must be a list")
    postcodes: list[tuple[str, str, str | None]] = []
    for district in data["districts"]:
        slug = add(district, AreaKind.DISTRICT, force)
        towns, codes = district.get("towns") or [], district.get("postcodes") or []
        if not isinstance(towns, list) or not isinstance(codes, list | dict):
            raise fail(f"towns and postcodes of {slug!r} must be lists")
        add_places(district, slug, "towns", AreaKind.TOWN)
        add_places(district, slug, "places", AreaKind.VILLAGE)
        # A list of codes (each stands for the district), or a mapping code -> the town
        # it lies in (null where it spans several).
        pairs = codes.items() if isinstance(codes, dict) else ((code, None) for code in codes)
        postcodes += [
            (str(code).upper(), slug, None if town is None else str(town)) for code, town in pairs
        ]
    for code, district_slug, town in postcodes:
        add({"name": code, "slug": code.lower()}, AreaKind.POSTCODE, district_slug)
        nodes[-1] = replace(
            nodes[-1], stands_for=None if town is None else seen.get(fold(town), town)
        )
    by_slug = {node.slug: node for node in nodes}
    for node in nodes:
        if node.stands_for is not None and node.stands_for not in by_slug:
            raise fail(
                f"postcode {node.name} stands for {node.stands_for!r}, which is not a place here"
            )
    for label, slugs in shared.items():
        if label in seen and seen[label] not in slugs:
            raise fail(
                f"{label!r} is a homonym of {', '.join(slugs)} but also a name of {seen[label]!r}"
            )
    not_places = data.get("not_places") or []
    if not isinstance(not_places, list):
        raise fail("'not_places' must be a list of names")
    outside = data.get("outside") or {}
    return Gazetteer(
        nodes,
        not_places=[str(name) for name in not_places],
        outside=_parse_outside(data, fail),
        sites=_sites(data["force"], "force", fail),
        outside_sites=_sites(outside, "outside", fail),
    )


def _sites(entry: Any, where: str, fail: Callable[[str], GazetteerError]) -> list[str]:
    listed = entry.get("sites") or [] if isinstance(entry, dict) else []
    if not isinstance(listed, list) or not all(isinstance(s, str) and s.strip() for s in listed):
        raise fail(f"'{where}: sites' must be a list of host names such as kent.police.uk")
    return [s.strip() for s in listed]


def _parse_outside(
    data: dict[str, Any], fail: Callable[[str], GazetteerError]
) -> list[OutsideName]:
    """``outside: {forces: [...], places: [...]}``: places may be grouped in lists, and
    each is a name or ``{name: X, common_word: true}``."""
    outside = data.get("outside") or {}
    if not isinstance(outside, dict):
        raise fail("'outside' must be a mapping with 'forces' and 'places'")
    found: list[OutsideName] = []
    for key in ("forces", "places"):
        listed = outside.get(key) or []
        if not isinstance(listed, list):
            raise fail(f"'outside: {key}' must be a list of names")
        pending: list[Any] = list(listed)
        while pending:
            item = pending.pop(0)
            if isinstance(item, list):
                pending[:0] = item
            elif isinstance(item, dict) and item.get("name"):
                found.append(
                    OutsideName(str(item["name"]), key == "forces", bool(item.get("common_word")))
                )
            elif isinstance(item, str) and item.strip():
                found.append(OutsideName(item.strip(), key == "forces"))
            else:
                raise fail(f"'outside: {key}' has {item!r}, not a name or {{name: ...}}")
    return found
