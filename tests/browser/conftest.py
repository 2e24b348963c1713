"""Real-browser fixtures: Debian's Chromium driven by Playwright, against the web app
served by uvicorn on a free loopback port.

    def test_something(live_server, page, write_config):
        server = live_server()                     # a config whose base_url is the server
        page.goto(server.url + "/areas/medway")

``live_server(**config_overrides)`` writes a config (the ``write_config`` fixture) whose
``site.base_url`` is the server's own address, so every link on the pages and in the
feeds resolves to it; ``server.app`` is the :class:`alerts.app.App` it serves, for
putting data in first. ``page`` is a fresh page in a phone-sized (375 px) context;
``browser`` is shared by the session for tests that want their own contexts.

Skipped, with the reason, when /usr/bin/chromium is absent (install it with
``scripts/install-system-packages chromium``). Playwright's own browser download is
never used: browsers cannot be downloaded here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.app import App
from alerts.web import create_app
from alerts.web.testing import bind_loopback, serve_in_thread, socket_url

CHROMIUM = Path(os.environ.get("ALERTS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
AXE = Path(
    os.environ.get(
        "ALERTS_TEST_AXE",
        Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/axe-core/axe.min.js",
    )
)
#: The WCAG 2.2 AA rules (and the A and 2.0/2.1 ones they include).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)


@dataclass
class LiveServer:
    url: str
    app: App


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: run 'scripts/install-system-packages chromium'")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page, 375 px wide like a phone, British English."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def live_server(write_config: Callable[..., Path]) -> Iterator[Callable[..., LiveServer]]:
    """Start the web app on a free loopback port: ``live_server(**config_overrides)``."""
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> LiveServer:
            sock = bind_loopback()
            url = socket_url(sock)
            site = {**overrides.pop("site", {}), "base_url": url}
            app = App(write_config(site=site, **overrides))
            stack.callback(app.close)
            stack.enter_context(serve_in_thread(create_app(app), sock))
            return LiveServer(url=url, app=app)

        yield start


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(f"{AXE} is absent: run 'scripts/install-axe-core' (make test does)")
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any, source: str) -> list[str]:
    """Run axe-core's WCAG 2.2 AA rules on the page as it stands; one line per
    violation and element, empty when there is none. The page's context must bypass
    its Content-Security-Policy (``bypass_csp=True``), which forbids scripts."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
        for violation in result["violations"]
        for node in violation["nodes"]
    ]


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for work the server does after it answered (the forms queue their mail in a
    background task, so the answer's timing tells nothing), polling a few times a
    second; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while not check():
        assert time.monotonic() < deadline, "the server never finished its background work"
        pause.wait(0.02)
