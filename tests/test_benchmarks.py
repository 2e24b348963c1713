"""The benchmark scripts keep working: each runs at a tiny size and prints its figures.

Nothing here times anything (machines are shared and noisy); the figures themselves
come from running the scripts at full size, as their docstrings say.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO

CASES = {
    "poll.py": (["--files", "20", "--polls", "2"], "poll with nothing changed"),
    "render.py": (["--sizes", "40", "--runs", "1", "--sample", "50"], "premailer_calls"),
    "fanout.py": (
        ["--subscribers", "60", "--runs", "1", "--durability", "--dkim", "--ed25519"],
        "ratio signed/unsigned time",
    ),
    "areas.py": ([], "micro precision"),
    "latency.py": (["--sizes", "20", "--runs", "1", "--confirmations", "1"], "alerts web alone"),
    "password_hash.py": (["--rounds", "1"], "verify: median"),
    "console_send.py": (["--sizes", "2", "--runs", "1"], "alerts web alone, 2 subscribers"),
    "store_paths.py": (["--size", "20", "--runs", "1"], "CPU s per 1,000 messages"),
    "form_timing.py": (["--rounds", "4", "--known", "2"], "subscribe answer"),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_at_a_tiny_size_and_prints_its_figures(script: str) -> None:
    args, expected = CASES[script]
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout
