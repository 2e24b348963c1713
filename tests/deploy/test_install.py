"""As an operator installs it: a non-editable 'pip install' of the project into a fresh
virtual environment outside the repository, 'alerts init site', then from site/
'alerts run --once' and 'alerts web' serving the home page and the sign-up form."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from the repository as a wheel (not
    editable). Its dependencies come from this test environment's site-packages through a
    .pth line (so no download), which adds that folder to sys.path without running its own
    .pth files: the editable install there stays out of reach."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    purelib = Path(
        subprocess.run(
            [
                venv / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    )
    (purelib / "zz_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    build = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
         "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    shutil.rmtree(REPO / "build", ignore_errors=True)  # what the wheel build left in the checkout
    return venv / "bin"


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALERTS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = "/usr/bin:/bin"
    return env


def test_the_installed_package_is_the_one_in_the_new_environment(
    installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import alerts, alerts.templating as t; print(alerts.__file__); print(t.PACKAGE_TEMPLATES)"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert all(line.startswith(str(installed.parent)) for line in where), where
    templates = Path(where[1])
    assert not templates.is_symlink() and (templates / "web" / "subscribe.html").exists() is False
    assert (templates / "web" / "subscriptions" / "subscribe.html").is_file()
    assert (templates / "email" / "digest.html").is_file()


def test_init_then_run_once_then_web_serves_the_home_page_and_sign_up_form(
    installed: Path, tmp_path: Path
) -> None:
    env = clean_env()
    init = subprocess.run(
        [installed / "alerts", "init", "site"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    site = tmp_path / "site"
    for sample in (REPO / "advisories").glob("*.md"):
        shutil.copy(sample, site / "advisories")
    run = subprocess.run(
        [installed / "alerts", "run", "--once"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "run: 1 new" in run.stdout + run.stderr
    assert (site / "var" / "feeds" / "all.atom").is_file()
    port = free_port()
    web = subprocess.Popen(
        [installed / "alerts", "web", "--port", str(port)], cwd=site, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert web.poll() is None and time.monotonic() < deadline, (
                    "alerts web did not start"
                )
                time.sleep(0.2)
        assert (
            home.status_code == 200
            and "telephone fraudster poses as Kent Police officer" in home.text
        )
        form = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=5)
        assert form.status_code == 200 and "<form" in form.text
    finally:
        web.terminate()
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
