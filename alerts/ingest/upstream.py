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
from collections.abc import Callable, Iterable
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


def ingest_feeds(
    sources: Iterable[SourceConfig],
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    monotonic: Callable[[], float],
    site_url: str | None = None,
    client: httpx.Client | None = None,
) -> IngestReport:
    """Fetch, parse and store every feed source. A feed that fails is logged with its
    URL and listed in ``report.source_errors``; the others go on. ``monotonic`` (the
    clock's) times each fetch's overall deadline."""
    report = IngestReport()
    own_client = client is None
    client = client or make_client(site_url)
    try:
        for source in sources:
            if source.feed is None:
                continue  # a folder: alerts.ingest.directory reads those
            try:
                report.merge(
                    ingest_feed(
                        source, store, gazetteer, now=now, monotonic=monotonic, client=client
                    )
                )
            except SourceError as exc:
                # Reported by the caller (the pipeline's log line, the CLI's output): a
                # warning here too would log every failed poll twice.
                log.debug("source failed: %s", exc, extra={"ctx_source": source.feed})
                store.sources.save_upstream_poll(
                    source.feed, now=now, status=None, error=str(exc.message)
                )
                report.source_errors.append(exc)
    finally:
        if own_client:
            client.close()
    return report


def ingest_feed(
    source: SourceConfig,
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    monotonic: Callable[[], float],
    client: httpx.Client,
) -> IngestReport:
    """One feed: conditional GET, parse, store. Raises :class:`SourceError`."""
    url = source.feed or ""
    force_area = resolve_source_area(source, gazetteer)
    state = store.sources.upstream_poll(url)
    fetched = fetch_feed(source, state, monotonic=monotonic, client=client)
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
