"""The embedded backend: each message a file in a Maildir (``cur``/``new``/``tmp``), so the
main job runs on a fresh machine with no relay and the result opens in any mail reader."""

from __future__ import annotations

import mailbox
import threading
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from alerts.delivery.base import TemporaryFailure
from alerts.errors import ConfigError


class MaildirSender:
    """Delivers into the Maildir at ``path`` (created if missing)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            # Maildir(create=True) makes only the last folder: var/ may not exist yet on a
            # fresh machine (the start-up checks run before the database creates it).
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.maildir = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the Maildir: {exc.strerror or exc}",
                where="delivery.maildir",
                hint="give a folder this user can write to",
            ) from None
        # mailbox.Maildir names files with a class-wide counter; one lock keeps the
        # names unique when several workers deliver at once.
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return str(self.path)

    def connection(self) -> MaildirSender:
        return self

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        # Maildir files use the local line ending; the file appears in new/ only once
        # it is complete (written to tmp/, then renamed), so a crash leaves no half mail.
        data = message.replace(b"\r\n", b"\n")
        try:
            with self._lock:
                self.maildir.add(data)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        pass


def erase_addressed_to(path: Path, email: str) -> int:
    """Remove every message in the Maildir at ``path`` addressed to ``email`` (To, Cc or
    Delivered-To, in any case): what the embedded backend delivered is a copy we hold,
    and an erasure reaches it. Returns how many files went (0 when there is no Maildir)."""
    wanted = email.strip().lower()
    removed = 0
    for folder in ("new", "cur", "tmp"):
        directory = Path(path) / folder
        if not directory.is_dir():
            continue
        for file in directory.iterdir():
            if file.is_file() and wanted in _recipients(file):
                file.unlink(missing_ok=True)
                removed += 1
    return removed


def _recipients(file: Path) -> set[str]:
    try:
        with file.open("rb") as handle:
            headers = BytesHeaderParser(policy=compat32).parse(handle)
    except OSError:
        return set()
    values = [
        str(value) for name in ("To", "Cc", "Delivered-To") for value in headers.get_all(name, [])
    ]
    return {address.lower() for _, address in getaddresses(values) if address}
