"""The public archive (areas, their advisories, one advisory) and the built feeds.

Pages show what the feeds show: an area lists what a subscriber to it gets (the
matching rule in :mod:`alerts.areas`), live advisories newest first. Feeds are the
files ``alerts feeds build`` wrote, served with a strong ETag (a hash of the bytes,
which a rebuild with nothing new leaves unchanged) and Last-Modified (the file's mtime,
which such a rebuild does not touch), so readers polling with conditional GET get 304;
gzipped for readers that ask. A browser opening a feed's URL gets a page instead
(:mod:`alerts.web.feed_pages`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.digest.advice import advice_of
from alerts.errors import NotFound, UnknownArea
from alerts.feeds.model import FORMATS
from alerts.types import AreaKind, Status
from alerts.web.feed_pages import feed_page, prefers_html
from alerts.web.pages import PAGE_HEADERS, error_page, render, web_app

PER_PAGE = 30
# Each page is one query of PER_PAGE + 1 rows (the extra one says whether there is an
# older page), so every page costs the same. The cap only keeps the offset a number
# every database accepts: ten million pages is far beyond any archive.
MAX_PAGE = 10_000_000
FEED_CACHE = "public, max-age=300"
# Below this, gzip saves less than the header costs.
GZIP_MIN = 1024
_FEED_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)\.(?P<fmt>rss|atom|json)$")


def routes(app: App) -> list[BaseRoute]:
    return [
        Route("/", index, name="index"),
        Route("/areas/{slug}", area_page, name="area"),
        Route("/find", find_area, name="find_area"),
        Route("/advisories/{advisory_id:int}", advisory_page, name="advisory"),
        Route("/feeds/{name}", feed_file, name="feed"),
    ]


def index(request: Request) -> Response:
    app = web_app(request)
    gazetteer = app.gazetteer
    areas = gazetteer.feed_areas()
    districts = [node for node in areas if node.kind is AreaKind.DISTRICT]
    towns = {
        district.slug: [
            node for node in areas if node.parent == district.slug and node.kind is AreaKind.TOWN
        ]
        for district in districts
    }
    latest = app.store.advisories.find(live_at=app.now(), limit=10)
    return render(
        request,
        "index.html",
        {
            "force": gazetteer.root,
            "districts": districts,
            "towns": towns,
            "latest": latest,
            "feed_slug": "all",
        },
    )


def find_area(request: Request) -> Response:
    """The index's search box: a town, district, postcode district or full postcode."""
    app = web_app(request)
    asked = " ".join(request.query_params.get("q", "").split())[:100]
    if not asked:
        return RedirectResponse(request.url_for("index"), status_code=303)
    try:
        slug = app.gazetteer.resolve(asked)
    except UnknownArea as exc:
        return error_page(
            request,
            404,
            "Area not found",
            f"No area in {app.gazetteer.root.name} matches “{asked}”.",
            "Try a town, a district or the first half of a postcode (such as ME4).",
            suggestions=_suggestions(request, exc),
        )
    return RedirectResponse(request.url_for("area", slug=slug), status_code=303)


def area_page(request: Request) -> Response:
    app = web_app(request)
    gazetteer = app.gazetteer
    asked = request.path_params["slug"]
    try:
        slug = gazetteer.resolve(asked)
    except UnknownArea as exc:
        return error_page(
            request,
            404,
            "Area not found",
            f"There is no area called “{asked}”.",
            "Choose one from the list of areas, or try a town or postcode district.",
            suggestions=_suggestions(request, exc),
        )
    if slug != asked:
        # A name, alias or postcode district ("ME4", "Chatham") goes to the area's one address.
        return RedirectResponse(request.url_for("area", slug=slug), status_code=301)
    page = _page_number(request)
    items = app.store.advisories.find(
        areas=gazetteer.matching_areas([slug]),
        live_at=app.now(),
        limit=PER_PAGE + 1,
        offset=(page - 1) * PER_PAGE,
    )
    node = gazetteer.node(slug)
    if page > 1 and not items:
        # Past the last page (an old link, or advisories since expired): say so, don't
        # serve an empty page that search engines and link checkers take for content.
        return error_page(
            request,
            404,
            "Page not found",
            f"There are fewer pages of advisories for {node.name} than that.",
            "The newest are on the area's first page.",
        )
    return render(
        request,
        "area.html",
        {
            "area": node,
            "parents": [gazetteer.node(parent) for parent in reversed(gazetteer.ancestors(slug))],
            "children": [child for child in gazetteer.feed_areas() if child.parent == slug],
            "postcodes": sorted(
                n.name
                for n in gazetteer.nodes.values()
                if n.kind is AreaKind.POSTCODE and n.parent == slug
            ),
            "advisories": items[:PER_PAGE],
            "page": page,
            "has_next": len(items) > PER_PAGE,
            "feed_slug": gazetteer.feed_area(slug),
        },
    )


def _suggestions(request: Request, exc: UnknownArea) -> list[tuple[str, str]]:
    """The areas the error suggests (spelt alike, or the several places a name names)
    as links to their pages, by name."""
    gazetteer = web_app(request).gazetteer
    slugs = [slug for slug in (*exc.homonyms, *exc.suggestions) if slug in gazetteer]
    return [
        (str(request.url_for("area", slug=slug).path), gazetteer.node(slug).name) for slug in slugs
    ]


def _page_number(request: Request) -> int:
    try:
        return min(max(int(request.query_params.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        return 1


def advisory_page(request: Request) -> Response:
    app = web_app(request)
    try:
        advisory = app.store.advisories.get(int(request.path_params["advisory_id"]))
        if advisory.outside_coverage:
            # Another force's news, or an unknown area: stored for the operator, not published.
            raise NotFound("outside coverage")
        if advisory.hold is not None and not advisory.hold.published:
            raise NotFound("held")  # a surge held (or dropped): not published until released
    except NotFound:
        return error_page(
            request,
            404,
            "Advisory not found",
            "There is no advisory at this address; it may have been removed.",
            "See the latest advisories for your area in the list of areas.",
        )
    gazetteer = app.gazetteer
    areas = [gazetteer.node(slug) for slug in advisory.areas if slug in gazetteer]
    withdrawn = advisory.status is Status.WITHDRAWN
    crumbs = [
        gazetteer.node(slug) for slug in common_path(gazetteer, [area.slug for area in areas])
    ]
    return render(
        request,
        "advisory.html",
        {
            "advisory": advisory,
            "areas": areas,
            "crumbs": crumbs,
            "withdrawn": withdrawn,
            "expired": not withdrawn and not advisory.is_live(app.now()),
            # What to do, above the story, as the emails show it.
            "advice": advice_of(advisory.body_text, advisory.extra),
            "feed_slug": areas[0].slug if len(areas) == 1 else "all",
        },
        # Gone, not missing: readers and search engines drop it.
        status=410 if withdrawn else 200,
    )


def common_path(gazetteer: Gazetteer, slugs: list[str]) -> list[str]:
    """The path from the top of the tree to the deepest area that holds all of
    ``slugs``: ``[kent, medway, chatham]`` for Chatham alone, ``[kent, medway]`` for
    Chatham and Gillingham, ``[kent]`` for Chatham and Dover, ``[]`` for none."""
    paths = [[*reversed(gazetteer.ancestors(slug)), slug] for slug in slugs]
    common: list[str] = []
    for level in zip(*paths, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return common


def feed_file(request: Request) -> Response:
    """A built feed, with conditional GET (If-None-Match, If-Modified-Since -> 304);
    or, for a browser, the feed's page."""
    app = web_app(request)
    name = request.path_params["name"]
    match = _FEED_NAME.match(name)
    if match is None or (match["slug"] != "all" and match["slug"] not in app.gazetteer):
        return error_page(
            request,
            404,
            "Feed not found",
            "There is no feed at this address.",
            "Each area's page links to its RSS, Atom and JSON feeds.",
        )
    canonical = match["slug"] if match["slug"] == "all" else app.gazetteer.feed_area(match["slug"])
    if canonical != match["slug"]:
        # A postcode district or a village has no feed of its own; its town's or
        # district's carries what it gets.
        return RedirectResponse(
            request.url_for("feed", name=f"{canonical}.{match['fmt']}"), status_code=301
        )
    if prefers_html(request.headers.get("accept")):
        # Its own weak ETag (a hash of the page), never the feed's: the two differ.
        return feed_page(
            request,
            canonical,
            match["fmt"],
            {**PAGE_HEADERS, "Cache-Control": FEED_CACHE, "Vary": "Accept"},
        )
    return _serve_file(
        request, Path(app.config.feeds.out) / name, f"{FORMATS[match['fmt']]}; charset=utf-8"
    )


def _serve_file(request: Request, path: Path, media_type: str) -> Response:
    """A file of the feeds folder, with conditional GET and gzip."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return error_page(
            request,
            404,
            "Feed not built yet",
            "This feed has not been written yet.",
            "The site's operator can run 'alerts feeds build'.",
        )
    with handle:
        # The stat and the bytes of one file: a rebuild renames a new one in meanwhile.
        info = os.fstat(handle.fileno())
        mtime = int(info.st_mtime)
        digest, data = _digest(path, handle, info)
        # Each encoding is its own representation with its own strong ETag; a client's tag
        # for either still means it holds this version (RFC 9110 8.8.3).
        etags = (f'"{digest}"', f'"{digest}-gzip"')
        gzipped = _accepts_gzip(request) and info.st_size > GZIP_MIN
        headers = {
            "ETag": etags[gzipped],
            "Last-Modified": formatdate(mtime, usegmt=True),
            "Cache-Control": FEED_CACHE,
            "Vary": "Accept, Accept-Encoding",
            # A feed is data: a browser must never sniff it into a page.
            "X-Content-Type-Options": "nosniff",
        }
        if _not_modified(request, etags, mtime):
            return Response(status_code=304, headers=headers)
        if data is None:
            data = handle.read()
    if gzipped:
        # mtime=0: the same bytes for the same feed, as the ETag promises.
        data = gzip.compress(data, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=media_type, headers=headers)


# Feed path -> ((inode, mtime_ns, size), hash of its bytes). Readers poll feeds mostly to
# hear 304: with this, such a poll costs an fstat, not a read and a hash of the file. A
# rebuild renames a new file in (a new inode). Bounded by the names feed_file serves.
_DIGESTS: dict[Path, tuple[tuple[int, int, int], str]] = {}


def _digest(path: Path, handle: BinaryIO, info: os.stat_result) -> tuple[str, bytes | None]:
    """The hash of the open feed file, and its bytes when they had to be read for it."""
    stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
    known = _DIGESTS.get(path)
    if known is not None and known[0] == stamp:
        return known[1], None
    data = handle.read()
    digest = hashlib.sha256(data).hexdigest()[:32]
    _DIGESTS[path] = (stamp, digest)
    return digest, data


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            quality = params.strip().lower().removeprefix("q=")
            return not params.strip() or quality.strip("0.") != ""
    return False


def _not_modified(request: Request, etags: tuple[str, ...], mtime: int) -> bool:
    # RFC 9110 13.2.2: If-None-Match, when present, decides; If-Modified-Since only without it.
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or bool(tags & set(etags))
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and mtime <= since.timestamp()
    return False
