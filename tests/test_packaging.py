"""What an install needs is declared and pinned: every package the code imports is a
dependency in pyproject.toml (test-only ones in the test extra), requirements.lock pins
each of them, and the test helpers that ship in the package say which extra they need."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _imported(folders: list[str]) -> dict[str, set[str]]:
    """Third-party distributions imported by the code under ``folders``, with where."""
    distributions = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("alerts", "tests", "__future__"):
                        continue
                    for distribution in distributions.get(top, [top]):
                        found.setdefault(_name(distribution), set()).add(
                            str(path.relative_to(REPO))
                        )
    return found


def test_every_package_the_code_imports_is_declared() -> None:
    runtime = {_name(r) for r in PROJECT["dependencies"]}
    test_extra = {_name(r) for r in PROJECT["optional-dependencies"]["test"]}
    undeclared = {
        name: sorted(where)
        for name, where in _imported(["alerts"]).items()
        if name not in runtime and not (name in test_extra and where == {"alerts/testing.py"})
    }
    assert undeclared == {}, "imported but not in pyproject.toml's dependencies"
    undeclared = {
        name: sorted(where)
        for name, where in _imported(["tests", "benchmarks"]).items()
        if name not in runtime | test_extra
    }
    assert undeclared == {}, "imported by tests or benchmarks but not in the test extra"


def test_the_lock_pins_every_declared_dependency() -> None:
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    pinned = {
        _name(line) for line in lock.splitlines() if "==" in line and not line.startswith(" ")
    }
    declared = {
        _name(r) for r in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"]]
    }
    assert declared - pinned == set(), "run 'make lock' after changing pyproject.toml"


def test_alerts_testing_without_the_test_extra_names_the_extra_to_install() -> None:
    # Blocking the import stands in for an install without the extra (uninstalling
    # aiosmtpd from the shared environment is not an option).
    code = "import sys; sys.modules['aiosmtpd'] = None; import alerts.testing"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(REPO),
    )
    assert result.returncode == 1
    assert "ImportError: alerts.testing needs aiosmtpd" in result.stderr
    assert "pip install 'area-alerts[test]'" in result.stderr
