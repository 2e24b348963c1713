"""What every request passes before a page sees it, and what its log line may show.

- :class:`BodyLimit`: a request body larger than :data:`MAX_BODY` is answered 413. A
  declared ``Content-Length`` over it is refused before a byte is read; a chunked body
  is counted as it arrives and refused when it passes the limit, so nothing buffers a
  large body whole.
- :class:`CanonicalHost`: the scheme and host of every request are those of
  ``site.base_url``, whatever the ``Host`` header said, so links and redirects (ours and
  Starlette's, such as the trailing-slash one) never point at a host an attacker chose.
- :class:`RedactTokens`: a logging filter for uvicorn's access log, so the signed tokens
  in personal links never reach a log file.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Our forms are a few kilobytes (every area ticked is about 3 KB); nothing we accept is
#: near this.
MAX_BODY = 64 * 1024
TOO_LARGE = b"The request is too large. Nothing was changed.\n"
_TOKEN = re.compile(r"(?i)(\btoken=)[^&#\s]*")


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body passes the limit (caught by BodyLimit)."""


class BodyLimit:
    """Answer 413 to a request body over ``limit`` bytes, without reading it all."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _too_large(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                # The client may still be sending: tell it this connection is done.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})


class CanonicalHost:
    """Every request as if addressed to ``base_url``: its scheme, host and port."""

    def __init__(self, app: ASGIApp, base_url: str):
        self.app = app
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.netloc.encode("ascii")
        self.server = (
            parts.hostname or "localhost",
            parts.port or (443 if parts.scheme == "https" else 80),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            scope["scheme"] = (
                self.scheme
                if scope["type"] == "http"
                else ("wss" if self.scheme == "https" else "ws")
            )
            scope["server"] = self.server
            scope["headers"] = [(b"host", self.host)] + [
                (name, value) for name, value in scope.get("headers", []) if name != b"host"
            ]
        await self.app(scope, receive, send)


def redact_tokens(text: str) -> str:
    """``/manage?token=abc.def`` -> ``/manage?token=…``."""
    return _TOKEN.sub(r"\1…", text)


class RedactTokens(logging.Filter):
    """Drops the token from the request line of uvicorn's access log records
    (their args are client, method, path with query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def redact_access_log() -> None:
    """Install :class:`RedactTokens` on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
