"""Serve an ASGI app on a real loopback socket from a background thread: for tests (the
browser tests, feed readers fetching over HTTP) and for anyone embedding the web app.

    with serve_in_thread(create_app(app)) as url:
        httpx.get(url + "/feeds/all.rss")
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn


def bind_loopback(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port. Binding before the server starts means there
    is no race for the port, and clients may connect at once: the kernel queues them
    until the server accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextlib.contextmanager
def serve_in_thread(asgi_app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run ``asgi_app`` under uvicorn until the block ends; yields its base URL. Its
    lifespan runs as under ``alerts web`` (the forms' worker starts, and drains at the end)."""
    sock = sock or bind_loopback()
    config = uvicorn.Config(asgi_app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn"
    )
    thread.start()
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
