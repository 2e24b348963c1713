"""Where a feed's redirect may lead: over loopback HTTP, a redirect to the same host
and port is followed; to another port on the same machine, another host, or a scheme
other than http(s) it is refused, naming the feed; a host the source lists is allowed.
From a public address to a private or loopback one is never followed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from alerts.areas import Gazetteer
from alerts.config import SourceConfig
from alerts.errors import SourceError
from alerts.ingest.redirects import check_redirect
from alerts.ingest.upstream import ingest_feeds
from alerts.store import Store
from tests.support import NOW
from tests.support.feed_server import FeedServer, serve_feeds


@pytest.fixture
def other() -> Iterator[FeedServer]:
    """Another service on the same machine (another port)."""
    with serve_feeds() as running:
        yield running


def redirect(server: FeedServer, path: str, location: str) -> SourceConfig:
    server.routes[path] = (302, {"Location": location}, b"")
    return SourceConfig(feed=server.url(path))


def error_of(store: Store, gazetteer: Gazetteer, source: SourceConfig) -> str:
    report = ingest_feeds([source], store, gazetteer, now=NOW, monotonic=time.monotonic)
    (error,) = report.source_errors
    return str(error)


def test_a_redirect_on_the_same_host_and_port_is_followed(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    source = redirect(server, "/old.rss", "/news.rss")  # relative, as servers often send
    report = ingest_feeds([source], sqlite_store, gazetteer, now=NOW, monotonic=time.monotonic)
    assert report.ok and len(report.new) == 3


def test_a_redirect_to_another_port_on_the_same_machine_is_refused(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, other: FeedServer
) -> None:
    source = redirect(server, "/f.rss", other.url("/news.rss"))
    port = other.base.rsplit(":", 1)[1]
    assert error_of(sqlite_store, gazetteer, source) == (
        f"{source.feed}: redirect to {other.url('/news.rss')} refused: 127.0.0.1:{port} is not the feed's own"
        " host and port (if the feed really moved there, put its new URL in config.yaml"
        " (or list the host in 'redirect_hosts'))"
    )
    assert other.requests == [] and sqlite_store.advisories.count() == 0


def test_a_redirect_to_another_host_is_refused_unless_the_source_lists_it(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, other: FeedServer
) -> None:
    port = other.base.rsplit(":", 1)[1]
    moved = other.url("/news.rss").replace("127.0.0.1", "localhost")
    source = redirect(server, "/f.rss", moved)
    assert "localhost:" + port + " is not the feed's own host and port" in error_of(
        sqlite_store, gazetteer, source
    )
    listed = source.model_copy(update={"redirect_hosts": (f"localhost:{port}",)})
    report = ingest_feeds([listed], sqlite_store, gazetteer, now=NOW, monotonic=time.monotonic)
    assert report.ok and len(report.new) == 3 and len(other.requests) == 1


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/feed.rss", "gopher://127.0.0.1:70/"]
)
def test_a_redirect_off_http_is_refused(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, location: str
) -> None:
    source = redirect(server, "/f.rss", location)
    assert (
        f"redirect to {location} refused: only http and https addresses are followed"
        in error_of(sqlite_store, gazetteer, source)
    )


def test_a_chain_of_allowed_redirects_still_stops_after_five(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    assert "more than 5 redirects" in error_of(
        sqlite_store, gazetteer, SourceConfig(feed=server.url("/loop"))
    )
    assert len(server.headers_of("/loop")) == 6


# The address rule needs a feed host with public addresses, which this machine cannot
# serve (loopback only): these give check_redirect a resolver standing in for DNS.
PUBLIC_DNS = {  # names to addresses, never contacted: check_redirect only classifies them
    "news.kent.example": ["8.8.4.4"],
    "cdn.kent.example": ["1.1.1.1"],
    "admin.kent.example": ["10.0.0.5"],
    "both.kent.example": ["9.9.9.9", "127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}


def dns(host: str, port: int) -> list[str]:
    return PUBLIC_DNS.get(host, [])


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            "https://admin.kent.example/feed",
            "from a public address to a private or loopback one (10.0.0.5)",
        ),
        ("http://localhost/feed", "from a public address to a private or loopback one (127.0.0.1)"),
        (
            "https://both.kent.example/feed",
            "from a public address to a private or loopback one (127.0.0.1)",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "from a public address to a private or loopback one (169.254.169.254)",
        ),
        ("http://[::1]/feed", "from a public address to a private or loopback one (::1)"),
    ],
)
def test_a_redirect_from_a_public_address_to_a_private_one_is_refused_even_when_listed(
    target: str, reason: str
) -> None:
    listed = ["admin.kent.example", "localhost", "both.kent.example", "169.254.169.254", "[::1]"]
    with pytest.raises(SourceError) as info:
        check_redirect("https://news.kent.example/feed", target, listed, resolve=dns)
    assert info.value.message == f"redirect to {target} refused: it leads {reason}"


def test_redirects_a_feed_may_follow() -> None:
    check_redirect(
        "http://news.kent.example/feed", "https://news.kent.example/feed", resolve=dns
    )  # upgrade
    check_redirect(
        "https://news.kent.example/feed", "https://NEWS.kent.example:443/new", resolve=dns
    )
    check_redirect(
        "https://news.kent.example/feed",
        "https://cdn.kent.example/feed",
        ["cdn.kent.example"],
        resolve=dns,
    )
    # A feed on a private network may redirect within it (the operator chose it).
    check_redirect("http://localhost:8080/feed", "http://localhost:8080/new", resolve=dns)
    with pytest.raises(SourceError, match="not the feed's own host and port"):
        check_redirect(
            "https://news.kent.example/feed", "http://news.kent.example/feed", resolve=dns
        )  # downgrade
    with pytest.raises(SourceError, match="not the feed's own host and port"):
        check_redirect(
            "https://news.kent.example/feed",
            "https://cdn.kent.example:8443/",
            ["cdn.kent.example"],
            resolve=dns,
        )


def test_redirect_hosts_in_config_must_be_host_names(tmp_path: object) -> None:
    from alerts.config import parse_config
    from alerts.errors import ConfigError

    config = parse_config(
        {
            "sources": [
                {
                    "feed": "https://a.example/f",
                    "redirect_hosts": ["CDN.example", "b.example:8443", "[::1]:80"],
                }
            ]
        },
        root=tmp_path,  # type: ignore[arg-type]
    )
    assert config.sources[0].redirect_hosts == ("cdn.example", "b.example:8443", "[::1]:80")
    with pytest.raises(
        ConfigError, match=r"'sources\[0\].redirect_hosts'.*got 'https://cdn.example/'"
    ):
        parse_config(
            {
                "sources": [
                    {"feed": "https://a.example/f", "redirect_hosts": ["https://cdn.example/"]}
                ]
            },
            root=tmp_path,  # type: ignore[arg-type]
        )
