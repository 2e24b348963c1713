"""The ``alerts`` command in a subprocess, as an operator or a service manager runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

LOOPBACK = "127.0.0.1"


class AlertsProcess:
    """``alerts --log-format json --config CONFIG ARGS...`` in a subprocess (``alerts serve``,
    ``alerts web``), its stderr lines collected as they come."""

    def __init__(self, config: str | os.PathLike[str], *args: str, cwd: str | None = None):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alerts",
                "--log-format",
                "json",
                "--config",
                str(config),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def mark(self) -> int:
        """Where the log is now: ``wait_for(..., after=mark)`` looks only at later lines."""
        with self._new:
            return len(self.lines)

    def wait_for(self, text: str, timeout: float = 90, *, after: int = 0) -> dict[str, Any]:
        """The first JSON log line (from line ``after`` on) whose message contains
        ``text`` (AssertionError when none comes within ``timeout`` seconds or the
        process ends)."""

        def found() -> dict[str, Any] | None:
            for line in self.lines[after:]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a traceback, say: shown in the assertion below
                if text in str(entry.get("message")):
                    return dict(entry)
            return None

        with self._new:
            self._new.wait_for(lambda: found() is not None or self.proc.poll() is not None, timeout)
            entry = found()
        assert entry is not None, f"no {text!r} within {timeout} s; the log so far: {self.lines}"
        return entry

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def free_port() -> int:
    """A TCP port on the loopback nobody listens on (for ``alerts web --port``)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
