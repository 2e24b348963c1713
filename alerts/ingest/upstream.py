"""Upstream feeds: ``sources:`` entries with ``feed: URL``.

Each feed is fetched with a conditional GET (so an unchanged feed costs a 304), within a
time limit and a byte cap, and parsed with feedparser; every entry becomes an
:class:`AdvisoryInput` whose identity is its GUID (else its link). A feed that is down,
slow, too large, truncated or not a feed raises :class:`SourceError` naming the URL; the
caller reports it and the other sources go on. Nothing is remembered about a failed
fetch except the error, so the next poll simply tries again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

import httpx

from alerts import __version__
from alerts.areas import Gazetteer
from alerts.config import SourceConfig
from alerts.errors import ConfigError, SourceError, UnknownArea
from alerts.ingest.batch import IngestReport, save_parsed
from alerts.ingest.entries import RETRY_HINT, Fetched, parse_feed
from alerts.ingest.redirects import check_redirect
from alerts.store import Store
from alerts.store.sources import UpstreamPoll

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


def user_agent(site_url: str | None = None) -> str:
    """Who we are, so a feed's operator can tell us apart and reach us."""
    contact = f"; +{site_url}" if site_url else ""
    return f"AreaAlerts/{__version__} (Area Alerts advisory fetcher{contact})"


def make_client(site_url: str | None = None) -> httpx.Client:
    # Redirects are followed by fetch_feed, each checked (alerts.ingest.redirects).
    return httpx.Client(
        follow_redirects=False,
        headers={"User-Agent": user_agent(site_url), "Accept": ACCEPT},
    )


@dataclass(frozen=True)
class FeedFetch:
    """One feed source fetched, nothing yet stored: the poll state its conditional GET
    was made with, and the answer (``fetched``) or why there was none (``error``)."""

    state: UpstreamPoll
    fetched: Fetched | None = None
    error: SourceError | None = None


#: What :func:`fetch_feeds` got, by feed URL (the poll state is kept by URL too).
FeedFetches = Mapping[str, FeedFetch]


def fetch_feeds(
    sources: Iterable[SourceConfig],
    store: Store,
    *,
    monotonic: Callable[[], float],
    site_url: str | None = None,
    client: httpx.Client | None = None,
) -> dict[str, FeedFetch]:
    """Fetch every feed source in ``sources`` and write nothing: the network half of an
    ingest, which ``alerts serve`` and ``alerts ingest`` do before they take the queue
    turn (alerts.locking), so a slow upstream never keeps the console waiting for it.
    :func:`ingest_feeds` stores the answers. ``monotonic`` times each fetch's deadline."""
    fetches: dict[str, FeedFetch] = {}
    own_client = client is None
    client = client or make_client(site_url)
    try:
        for source in sources:
            if source.feed is None:
                continue  # a folder: alerts.ingest.directory reads those
            if source.feed in fetches:
                continue  # two sources on one URL (each with a name): one fetch
            state = store.sources.upstream_poll(source.feed)
            try:
                fetched = fetch_feed(source, state, monotonic=monotonic, client=client)
            except SourceError as exc:
                fetches[source.feed] = FeedFetch(state, error=exc)
            else:
                fetches[source.feed] = FeedFetch(state, fetched)
    finally:
        if own_client:
            client.close()
    return fetches


def ingest_feeds(
    sources: Iterable[SourceConfig],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    monotonic: Callable[[], float],
    site_url: str | None = None,
    client: httpx.Client | None = None,
    fetches: FeedFetches | None = None,
) -> IngestReport:
    """Parse and store what every feed source gave: ``fetches`` (from
    :func:`fetch_feeds`, a feed missing from them is left for the next poll), or
    without them, each feed fetched here first. A feed that fails is logged with its
    URL and listed in ``report.source_errors``; the others go on. A feed whose answer is
    not stored (stale, or not fetched) is listed in ``report.dropped``: no poll of it is
    recorded. ``monotonic`` (the clock's) times each fetch's overall deadline."""
    feeds = [source for source in sources if source.feed is not None]
    if fetches is None:
        fetches = fetch_feeds(feeds, store, monotonic=monotonic, site_url=site_url, client=client)
    report = IngestReport()
    recorded: set[str] = set()
    for source in feeds:
        url = source.feed or ""
        fetch = fetches.get(url)
        if fetch is None:
            report.dropped.append(url)
            continue
        try:
            fed = ingest_feed(source, fetch, store, gazetteer, now=now, ours=recorded)
        except SourceError as exc:
            # Reported by the caller (the pipeline's log line, the CLI's output): a
            # warning here too would log every failed poll twice.
            log.debug("source failed: %s", exc, extra={"ctx_source": url})
            store.sources.save_upstream_poll(url, now=now, status=None, error=str(exc.message))
            report.source_errors.append(exc)
        else:
            report.merge(fed)
            if url in fed.dropped:
                # Not ours: a second source on this URL must not store the answer either.
                continue
        recorded.add(url)
    return report


def ingest_feed(
    source: SourceConfig,
    fetch: FeedFetch,
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    ours: Collection[str] = (),
) -> IngestReport:
    """One feed's fetch: parse, store. Raises :class:`SourceError` (the fetch's).

    The fetch was made outside the queue turn, so another process may have stored a
    poll of the same feed since: what it stored may be newer than this answer, which is
    then dropped (nothing is lost: the next poll asks again with the validators it
    recorded) and named in ``report.dropped``, so that no poll of it is recorded either:
    the newer poll's status, validators, error and health stand. A poll recorded by this
    same run (``ours``: feed URLs) does not count."""
    url = source.feed or ""
    force_area = resolve_source_area(source, gazetteer)
    if url not in ours and store.sources.upstream_poll(url) != fetch.state:
        log.info(
            "%s was polled by another process meanwhile; this answer is dropped, the next"
            " poll asks again",
            url,
            extra={"ctx_source": url},
        )
        return IngestReport(dropped=[url])
    if fetch.error is not None:
        raise fetch.error
    fetched = fetch.fetched
    assert fetched is not None  # a FeedFetch has one or the other
    state = fetch.state
    warned = state.warned
    if fetched.body is None:  # 304: the validators sent are still the feed's
        log.debug("%s not modified", url)
        report = IngestReport()
    else:
        parsers, warnings = parse_feed(fetched, source, gazetteer, now=now, force_area=force_area)
        report = save_parsed(parsers, store, gazetteer, now)
        report.warnings[:0] = warnings
        # Logged once: a feed that repeats a GUID in every version would otherwise
        # fill the log at every poll. The report still carries them for this run.
        warned = hashlib.sha256("\n".join(warnings).encode()).hexdigest() if warnings else None
        level = logging.WARNING if warned != state.warned else logging.DEBUG
        for warning in warnings:
            log.log(level, "%s", warning, extra={"ctx_source": url})
    if state.error:
        log.info("source %s is answering again", url)
    # Validators are kept only once the entries are stored: a crash before this line
    # means the next poll fetches the whole feed again rather than skipping it.
    store.sources.save_upstream_poll(
        url,
        now=now,
        status=fetched.status,
        error=None,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        warned=warned,
    )
    return report


def resolve_source_area(source: SourceConfig, gazetteer: Gazetteer) -> str | None:
    """The slug of the source's ``area:``; a name the gazetteer lacks is a config error."""
    if not source.area:
        return None
    try:
        return gazetteer.resolve(source.area)
    except UnknownArea as exc:
        raise ConfigError(
            f"area {source.area!r} of source {source.label} is unknown",
            where="sources",
            hint=exc.hint,
        ) from None


# -- fetching -----------------------------------------------------------------


def fetch_feed(
    source: SourceConfig,
    state: UpstreamPoll,
    *,
    monotonic: Callable[[], float],
    client: httpx.Client,
) -> Fetched:
    """GET the feed with the stored validators, at most ``source.max_bytes`` in
    ``source.timeout`` seconds all told, following at most :data:`MAX_REDIRECTS`
    redirects the source's policy allows. Raises :class:`SourceError`."""
    url = source.feed or ""
    for _ in range(MAX_REDIRECTS + 1):
        fetched = _get(url, source, state, monotonic=monotonic, client=client)
        if fetched.location is None:
            return fetched
        check_redirect(source.feed or "", fetched.location, source.redirect_hosts)
        log.debug("%s redirects to %s", url, fetched.location)
        url = fetched.location
    raise SourceError(
        f"more than {MAX_REDIRECTS} redirects",
        where=source.feed or "",
        hint="check the feed URL in config.yaml",
    )


def _get(
    url: str,
    source: SourceConfig,
    state: UpstreamPoll,
    *,
    monotonic: Callable[[], float],
    client: httpx.Client,
) -> Fetched:
    """One GET of ``url``; a redirect comes back as a :class:`Fetched` with its location."""
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    deadline = monotonic() + source.timeout

    def fail(message: str, hint: str = RETRY_HINT) -> SourceError:
        return SourceError(message, where=source.feed or url, hint=hint)

    try:
        with client.stream(
            "GET", url, headers=headers, timeout=httpx.Timeout(source.timeout)
        ) as response:
            if response.status_code == 304:
                return Fetched(str(response.url), 304, None, state.etag, state.last_modified)
            if response.is_redirect:
                location = urljoin(url, response.headers["Location"].strip())
                return Fetched(
                    str(response.url), response.status_code, None, None, None, location=location
                )
            if response.status_code >= 400:
                hint = (
                    "check the feed URL in config.yaml"
                    if response.status_code in (401, 403, 404, 410)
                    else RETRY_HINT
                )
                raise fail(f"HTTP {response.status_code} {response.reason_phrase}".rstrip(), hint)
            if response.status_code != 200:
                raise fail(
                    f"unexpected HTTP {response.status_code} {response.reason_phrase}".rstrip()
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > source.max_bytes:
                raise fail(_too_large(int(declared), source.max_bytes), _SIZE_HINT)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > source.max_bytes:
                    raise fail(_too_large(size, source.max_bytes, more=True), _SIZE_HINT)
                if monotonic() > deadline:
                    raise fail(f"too slow: not complete after {source.timeout:g} s")
                chunks.append(chunk)
            return Fetched(
                str(response.url),
                response.status_code,
                b"".join(chunks),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                response.headers.get("Content-Type"),
            )
    except httpx.TimeoutException:
        raise fail(f"timed out after {source.timeout:g} s") from None
    except httpx.RemoteProtocolError as exc:
        raise fail(
            f"the connection broke before the whole feed arrived (truncated): {exc}"
        ) from None
    except httpx.HTTPError as exc:
        raise fail(f"request failed: {exc.__class__.__name__}: {exc}") from None


_SIZE_HINT = "raise 'max_bytes' of this source in config.yaml if the feed really is this large"


def _too_large(size: int, cap: int, *, more: bool = False) -> str:
    return f"feed is {'over ' if more else ''}{size:,} bytes, more than max_bytes {cap:,}"
