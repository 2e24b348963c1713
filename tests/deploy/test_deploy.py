"""The deployment files in deploy/, run: the systemd units pass 'systemd-analyze verify'
with real paths filled in, and Debian's nginx with the site file (its own config and
folder on loopback, never the system's) in front of 'alerts web' holds 1,100 half-sent
requests without the app noticing, answers a normal request meanwhile, and replaces a
client's X-Forwarded-For with the address it came from."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from click.testing import CliRunner

from alerts.cli import cli
from alerts.config import load_config
from tests.support import REPO, SAMPLE

pytestmark = pytest.mark.slow
DEPLOY = REPO / "deploy"
HALF_OPEN = 1100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def filled_in(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each placeholder replaced; each must be there (so a change to the
    deployment file that this test no longer covers fails here)."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the deployment file"
        text = text.replace(old, new)
    return text


# -- systemd ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["alerts-serve.service", "alerts-web.service"])
def test_the_systemd_units_verify_with_real_paths(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is missing: run scripts/install-system-packages systemd (make test does)"
        )
    site = tmp_path / "site"
    CliRunner().invoke(cli, ["init", str(site)], catch_exceptions=False)
    text = filled_in(
        (DEPLOY / "systemd" / unit).read_text(encoding="utf-8"),
        {"/srv/alerts": str(site), "/opt/area-alerts/venv": sys.prefix},
    )
    assert (
        "User=alerts" in text and "ProtectSystem=strict" in text and "NoNewPrivileges=yes" in text
    )
    assert f"ReadWritePaths={site / 'var'}" in text
    (tmp_path / unit).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=120
    )
    # Unknown keys and bad values are only warnings (exit 0): none is allowed.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# -- nginx in front of alerts web -------------------------------------------------------


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.app_port = free_port()
        self.https_port = free_port()
        self.http_port = free_port()
        self.app_log = root / "web.log"
        self.ca = trustme.CA()
        self.app: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self) -> httpx.Client:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return httpx.Client(base_url=self.url, verify=context, timeout=10)

    def app_lines(self, marker: str) -> list[str]:
        """The app's access-log lines for requests whose path holds ``marker``."""
        deadline = time.monotonic() + 10
        while True:
            lines = [
                line
                for line in self.app_log.read_text(errors="replace").splitlines()
                if marker in line
            ]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert process.poll() is None and time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is missing: run scripts/install-system-packages nginx (make test does)")
    stack = Stack(tmp_path_factory.mktemp("deploy"))
    root = stack.root
    site = root / "site"
    result = CliRunner().invoke(
        cli, ["init", str(site), "--base-url", "https://alerts.example.org"]
    )
    assert result.exit_code == 0, result.output
    # 'alerts init' and the site file agree: the app believes forwarded headers from the
    # address nginx connects from, and nginx connects to where the unit has it listen.
    assert load_config(site / "config.yaml").web.trusted_proxies == ("127.0.0.1",)
    assert "--host 127.0.0.1 --port 8000" in (DEPLOY / "systemd" / "alerts-web.service").read_text(
        encoding="utf-8"
    )
    shutil.copy(SAMPLE, site / "advisories")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    alerts = Path(sys.prefix) / "bin" / "alerts"
    subprocess.run(
        [alerts, "run", "--once"], cwd=site, env=env, check=True, capture_output=True, timeout=180
    )
    with open(stack.app_log, "wb") as log:
        stack.app = subprocess.Popen(
            [alerts, "web", "--host", "127.0.0.1", "--port", str(stack.app_port), "--no-send"],
            cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    cert = stack.ca.issue_cert("alerts.example.org", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(root / "site.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "site.pem"))
    (root / "www").mkdir()
    (root / "site.conf").write_text(
        filled_in(
            (DEPLOY / "nginx" / "area-alerts.conf").read_text(encoding="utf-8"),
            {
                "listen 80;": f"listen 127.0.0.1:{stack.http_port};",
                "listen [::]:80;": "",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{stack.https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{stack.app_port};",
                "/etc/ssl/certs/alerts.example.org.pem": str(root / "site.pem"),
                "/etc/ssl/private/alerts.example.org.key": str(root / "site.key"),
                "/var/www/html": str(root / "www"),
            },
        ),
        encoding="utf-8",
    )
    # nginx.conf of its own (Debian's main config is never read), sized as the site asks.
    (root / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
""",
        encoding="utf-8",
    )
    command = [
        nginx,
        "-p",
        str(root),
        "-c",
        str(root / "nginx.conf"),
        "-e",
        str(root / "error.log"),
    ]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    stack.nginx = subprocess.Popen(command)
    try:
        wait_for_port(stack.app_port, stack.app, "alerts web")
        wait_for_port(stack.https_port, stack.nginx, "nginx")
        yield stack
    finally:
        for process in (stack.nginx, stack.app):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_pages_and_feeds_come_through_the_proxy_with_feeds_still_negotiated(stack: Stack) -> None:
    with stack.client() as client:
        home = client.get("/")
        assert (
            home.status_code == 200
            and "telephone fraudster poses as Kent Police officer" in home.text
        )
        assert client.get("/subscribe").status_code == 200
        page = client.get("/feeds/medway.rss", headers={"Accept": "text/html"})
        feed = client.get("/feeds/medway.rss", headers={"Accept": "application/rss+xml"})
        # What a browser gets differs from what a feed reader gets: nginx did not serve the file.
        assert page.headers["content-type"] != feed.headers["content-type"]
        assert (
            feed.headers["content-type"].startswith("application/rss+xml") and "<rss" in feed.text
        )
        assert "Accept" in feed.headers["vary"]
        plain = httpx.get(f"http://127.0.0.1:{stack.http_port}/subscribe", timeout=10)
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")


def test_a_forwarded_for_from_the_client_is_replaced_by_its_address(stack: Stack) -> None:
    with stack.client() as client:
        assert (
            client.get("/?through-proxy", headers={"X-Forwarded-For": "203.0.113.9"}).status_code
            == 200
        )
    [line] = stack.app_lines("/?through-proxy")
    assert "127.0.0.1:" in line and "203.0.113.9" not in line
    # The app does believe its proxy (web.trusted_proxies): straight from 127.0.0.1, the
    # header names the client. nginx's replacing it is what keeps a client from naming itself.
    httpx.get(
        f"http://127.0.0.1:{stack.app_port}/?from-proxy",
        headers={"X-Forwarded-For": "198.51.100.7"},
        timeout=10,
    )
    [line] = stack.app_lines("/?from-proxy")
    assert "198.51.100.7" in line


def test_a_thousand_half_sent_requests_do_not_hold_the_app(stack: Stack) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < HALF_OPEN + 200:
        pytest.skip(f"this process may open only {hard} files; the test needs {HALF_OPEN + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HALF_OPEN + 200), hard))
    context = ssl.create_default_context()
    stack.ca.configure_trust(context)
    assert stack.app is not None
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(HALF_OPEN):
            raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10)
            tls = context.wrap_socket(raw, server_hostname="alerts.example.org")
            tls.sendall(
                b"GET / HTTP/1.1\r\nHost: alerts.example.org\r\nUser-Agent: slow"
            )  # never finished
            held.append(tls)
        # The app holds none of them: nginx passes on only whole requests.
        app_files = len(os.listdir(f"/proc/{stack.app.pid}/fd"))
        assert app_files < 200, f"alerts web has {app_files} files open"
        with stack.client() as client:
            started = time.monotonic()
            answer = client.get("/subscribe")
            took = time.monotonic() - started
        assert answer.status_code == 200 and took < 1.0, f"{took:.2f} s"
    finally:
        for tls in held:
            tls.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
