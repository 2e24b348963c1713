"""A real HTTP server on a free loopback port that serves feeds the way upstreams do,
good and bad: conditional GET, 500, slow, truncated, oversize, junk, redirect loops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
RSS = (FEEDS / "kent-police-news.rss").read_bytes()
ATOM = (FEEDS / "kent-police-news.atom").read_bytes()
RSS_ETAG = '"rss-v1"'
ATOM_LAST_MODIFIED = formatdate(1776934800, usegmt=True)  # Thu, 23 Apr 2026 09:00:00 GMT


@dataclass
class FeedServer:
    base: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: Overrides of what a path serves: (status, headers, body).
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    #: ``/stall``: set when its request has arrived; it answers once ``unstall`` is set.
    stalled: threading.Event = field(default_factory=threading.Event)
    unstall: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base + path

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen == path]


@contextmanager
def serve_feeds() -> Iterator[FeedServer]:
    server_ref: dict[str, FeedServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            state = server_ref["state"]
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path in state.routes:
                status, headers, body = state.routes[self.path]
                self._send(status, headers, body)
            elif self.path == "/news.rss":
                if self.headers.get("If-None-Match") == RSS_ETAG:
                    self._send(304, {"ETag": RSS_ETAG}, b"")
                else:
                    self._send(
                        200,
                        {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": RSS_ETAG},
                        RSS,
                    )
            elif self.path == "/news.atom":
                if self.headers.get("If-Modified-Since") == ATOM_LAST_MODIFIED:
                    self._send(304, {}, b"")
                else:
                    headers = {
                        "Content-Type": "application/atom+xml",
                        "Last-Modified": ATOM_LAST_MODIFIED,
                    }
                    self._send(200, headers, ATOM)
            elif self.path == "/broken":
                self._send(500, {"Content-Type": "text/plain"}, b"Internal Server Error")
            elif self.path == "/slow":
                # Holds the request far longer than any test's source timeout; released at teardown.
                state.release.wait(10)
                self._send(200, {"Content-Type": "application/rss+xml"}, RSS)
            elif self.path == "/stall":
                # An upstream that has taken the request and holds its answer until the
                # test lets it go (or 60 s pass): the test acts while it is stalled.
                state.stalled.set()
                state.unstall.wait(60)
                self._send(200, {"Content-Type": "application/rss+xml", "ETag": RSS_ETAG}, RSS)
            elif self.path == "/truncated":
                # Promises the whole feed, sends half, hangs up.
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(RSS)))
                self.end_headers()
                self.wfile.write(RSS[: len(RSS) // 2])
                self.close_connection = True
            elif self.path == "/truncated-xml":
                # No length given: the body ends where the connection closes, mid-document.
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(RSS[: len(RSS) * 2 // 3])
                self.close_connection = True
            elif self.path == "/huge":
                self._send(
                    200,
                    {"Content-Type": "application/rss+xml"},
                    RSS + b"<!--" + b"x" * 200_000 + b"-->",
                )
            elif self.path == "/huge-stream":
                # Chunked, no Content-Length: the cap must hold while streaming.
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"<!--" + b"x" * 16_000 + b"-->"
                try:
                    for _ in range(100):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client gave up, as it should
                self.close_connection = True
            elif self.path == "/junk":
                body = b"<!doctype html><html><head><title>News</title></head><body><h1>Latest news</h1></body></html>"
                self._send(200, {"Content-Type": "text/html"}, body)
            elif self.path == "/binary":
                self._send(200, {"Content-Type": "application/octet-stream"}, bytes(range(256)) * 8)
            elif self.path == "/loop":
                self._send(302, {"Location": "/loop"}, b"")
            elif self.path == "/moved":
                self._send(301, {"Location": "/news.rss"}, b"")
            else:
                self._send(404, {"Content-Type": "text/plain"}, b"Not Found")

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                with suppress(OSError):
                    self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = FeedServer(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    server_ref["state"] = state
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        state.unstall.set()
        httpd.shutdown()
        httpd.server_close()
