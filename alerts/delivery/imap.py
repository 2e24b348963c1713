"""The bounce mailbox over IMAP: TLS from the start (IMAPS, port 993, RFC 8314) with the
server's certificate and host name always verified (``ca_file`` for a private CA), one
session per reading, under one overall deadline (``timeout``) taken from the clock.

Which messages are new, with nothing remembered on our side:

- without ``processed_folder``, a handled message stays where it is and is flagged with
  the keyword ``$AlertsCounted`` (and ``\\Seen``); new ones are those without the keyword.
  A person reading the folder (which marks mail seen) hides nothing from us, and nothing
  is deleted: the reports stay as evidence until the operator's own rules expire them;
- with ``processed_folder``, a handled message is moved there (``MOVE``, RFC 6851; or
  ``COPY``, ``\\Deleted`` and ``UID EXPUNGE`` of that message only, RFC 4315); everything
  left in ``folder`` is new.

A message is marked only after it was acted on. A session that dies in between (a crash,
the deadline, a dropped connection) leaves it unmarked, so it is read again next time;
the store counts it once all the same (``store.returns.mark_bounced_later`` changes a
message that is still ``sent`` or ``unknown`` only, and a suppressed address stays
suppressed), exactly as for a Maildir message read but not yet moved to ``cur/``.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import io
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from alerts.clock import Clock
from alerts.config import ImapConfig, Secret
from alerts.errors import ConfigError, MailboxError

#: The keyword a handled message carries (without processed_folder).
HANDLED = "$AlertsCounted"
_UID = re.compile(rb"\bUID (\d+)\b")


class ImapMailbox:
    """A configured IMAP bounce mailbox. Made at start-up, it checks the password
    variable and the CA file; :meth:`session` connects."""

    def __init__(self, settings: ImapConfig, clock: Clock, *, password: Secret | None = None):
        self.settings = settings
        self.clock = clock
        self.password = password or settings.password()
        self.context = _tls_context(settings)
        self.label = f"{settings.host}:{settings.port}"

    def session(self) -> ImapSession:
        """Connect and log in (raises :class:`~alerts.errors.MailboxError`, naming the
        server and what to do); use it as a context manager."""
        deadline = _Deadline(self.clock, self.settings.timeout)
        with _Translate(self.label, deadline, "connecting"):
            imap = _Imap(self.settings.host, self.settings.port, self.context, deadline)
        try:
            with _Translate(self.label, deadline, "logging in"):
                try:
                    self._log_in(imap)
                except imaplib.IMAP4.error as exc:
                    if isinstance(exc, imaplib.IMAP4.abort):
                        raise
                    raise MailboxError(
                        f"the server refused the login of {self.settings.username!r}: {_text(exc)}",
                        where=self.label,
                        hint="check delivery.bounces.imap.username and the password in "
                        f"${self.settings.password_env}",
                    ) from None
                # The list grows after login (MOVE, UIDPLUS); imaplib keeps the first.
                _, listed = imap.capability()
                if listed and isinstance(listed[0], bytes):
                    imap.capabilities = tuple(listed[0].decode("ascii", "replace").upper().split())
                return ImapSession(imap, self.settings, deadline)
        except BaseException:
            _close(imap)
            raise

    def _log_in(self, imap: _Imap) -> None:
        """LOGIN, whose strings imaplib sends in ASCII; a user name or password with
        other characters goes by ``AUTHENTICATE PLAIN`` in UTF-8 (RFC 4616, as RFC 6855
        asks), where the server offers it."""
        username, password = self.settings.username, self.password.reveal()
        if username.isascii() and password.isascii():
            # imaplib quotes the password, not the user name.
            imap.login(_quote(username), password)
            return
        if "AUTH=PLAIN" not in imap.capabilities:
            raise MailboxError(
                "the user name or password of delivery.bounces.imap has characters outside"
                " ASCII, and the server offers no AUTHENTICATE PLAIN to send them in UTF-8",
                where=self.label,
                hint="enable the PLAIN mechanism on the server, or give the mailbox an ASCII"
                f" password (in ${self.settings.password_env}) and user name",
            )
        # RFC 4616: authorization identity (none), NUL, user name, NUL, password.
        credentials = b"\0" + username.encode() + b"\0" + password.encode()
        imap.authenticate("PLAIN", lambda _challenge: credentials)


class ImapSession:
    """One logged-in session on the bounce folder."""

    def __init__(self, imap: _Imap, settings: ImapConfig, deadline: _Deadline):
        self.imap = imap
        self.settings = settings
        self.deadline = deadline
        self.label = f"{settings.host}:{settings.port}"

    def _errors(self, doing: str) -> _Translate:
        return _Translate(self.label, self.deadline, doing)

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _close(self.imap)

    def unread(self) -> Iterator[tuple[bytes, Callable[[], None]]]:
        """Each message not yet handled, with the function that marks it handled (call
        it once the message was acted on)."""
        settings = self.settings
        with self._errors(f"opening {settings.folder!r}"):
            self._select()
            if settings.processed_folder is not None:
                self._ensure(settings.processed_folder)
                uids = self._search("ALL")
            else:
                self._check_keywords()
                uids = self._search("UNKEYWORD", HANDLED)
        for uid in uids:
            with self._errors("fetching a message"):
                data = self._fetch(uid)
            if data is None:  # gone meanwhile (another reader moved it)
                continue
            yield data, functools.partial(self._mark, uid)

    def _mark(self, uid: str) -> None:
        with self._errors("marking a message handled"):
            target = self.settings.processed_folder
            if target is None:
                _ok(self.imap.uid("STORE", uid, "+FLAGS.SILENT", f"({HANDLED} \\Seen)"))
            elif "MOVE" in self.imap.capabilities:
                _ok(self.imap.uid("MOVE", uid, _quote(target)))
            elif "UIDPLUS" in self.imap.capabilities:
                _ok(self.imap.uid("COPY", uid, _quote(target)))
                _ok(self.imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)"))
                _ok(self.imap.uid("EXPUNGE", uid))
            else:
                raise MailboxError(
                    "the server can neither MOVE a message nor expunge one by its UID",
                    where=self.label,
                    hint="leave delivery.bounces.imap.processed_folder unset: handled "
                    f"messages are then flagged {HANDLED} instead",
                )

    def _select(self) -> None:
        kind, data = self.imap.select(_quote(self.settings.folder))
        if kind != "OK":
            raise MailboxError(
                f"cannot open the folder {self.settings.folder!r}: {_text(data)}",
                where=self.label,
                hint="check delivery.bounces.imap.folder (INBOX, or the folder the "
                "return path's mail is filed into)",
            )

    def _ensure(self, folder: str) -> None:
        kind, found = self.imap.list('""', _quote(folder))
        if kind == "OK" and any(found):
            return
        kind, data = self.imap.create(_quote(folder))
        if kind != "OK":
            raise MailboxError(
                f"cannot create the folder {folder!r}: {_text(data)}",
                where=self.label,
                hint="create it on the server, or fix delivery.bounces.imap.processed_folder",
            )

    def _check_keywords(self) -> None:
        # PERMANENTFLAGS names the flags that stick; \* means any keyword may be made.
        flags = self.imap.response("PERMANENTFLAGS")[1]
        if not any(flag and (b"\\*" in flag or HANDLED.encode() in flag) for flag in flags):
            raise MailboxError(
                f"the folder {self.settings.folder!r} cannot keep the keyword {HANDLED}",
                where=self.label,
                hint="set delivery.bounces.imap.processed_folder: handled messages are "
                "then moved there instead",
            )

    def _search(self, *criteria: str) -> list[str]:
        data = _ok(self.imap.uid("SEARCH", *criteria))
        return [uid.decode("ascii") for line in data if line for uid in line.split()]

    def _fetch(self, uid: str) -> bytes | None:
        # BODY.PEEK: fetching does not mark the message seen; it is marked once handled.
        data = _ok(self.imap.uid("FETCH", uid, "(BODY.PEEK[])"))
        for part in data:
            if (
                isinstance(part, tuple)
                and (found := _UID.search(part[0]))
                and found[1] == uid.encode()
            ):
                return part[1]
        return None


class _Imap(imaplib.IMAP4_SSL):
    """IMAP4_SSL whose every read and write is bounded by the session's deadline: each
    socket operation may take only the time left, so a server trickling a byte at a
    time cannot hold the reader past it."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, deadline: _Deadline):
        self.deadline = deadline
        super().__init__(host, port, ssl_context=context, timeout=deadline.left())

    def open(self, host: str = "", port: int | None = 993, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        self.file.close()
        self.file = io.BufferedReader(_DeadlineReader(self.sock, self.deadline))

    def send(self, data: Any) -> None:  # Any: typeshed's Buffer is not in 3.11's stdlib
        self.sock.settimeout(self.deadline.left())
        super().send(data)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: _Deadline):
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # io's is Buffer
        self.sock.settimeout(self.deadline.left())
        return self.sock.recv_into(buffer)


class _Deadline:
    def __init__(self, clock: Clock, seconds: float):
        self.clock = clock
        self.seconds = seconds
        self.end = clock.monotonic() + seconds

    def passed(self) -> bool:
        return self.clock.monotonic() >= self.end

    def left(self) -> float:
        """Seconds left; raises TimeoutError when none are."""
        left = self.end - self.clock.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        return left


class _Translate:
    """Turns what can go wrong talking to the server into a MailboxError naming it."""

    def __init__(self, label: str, deadline: _Deadline, doing: str):
        self.label = label
        self.deadline = deadline
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, MailboxError | ConfigError):
            return
        error = _mailbox_error(exc, self.label, self.deadline, self.doing)
        if error is not None:
            raise error from None


def _mailbox_error(
    exc: BaseException, label: str, deadline: _Deadline, doing: str
) -> MailboxError | None:
    later = "the mailbox is read again at the next run"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailboxError(
            f"the server's certificate is not trusted: {exc.verify_message}",
            where=label,
            hint="set delivery.bounces.imap.ca_file to the CA that signed it, or use the "
            "host name the certificate names (verification is never turned off)",
        )
    if isinstance(exc, ssl.SSLError):
        return MailboxError(
            f"TLS failed while {doing}: {exc.reason or exc}",
            where=label,
            hint="delivery.bounces.imap.port must be one that speaks TLS at once (IMAPS, 993)",
        )
    if isinstance(exc, TimeoutError) or deadline.passed():
        return MailboxError(
            f"no answer in time while {doing} (delivery.bounces.imap.timeout is "
            f"{deadline.seconds:g} s)",
            where=label,
            hint=f"check that the server is up and reachable; {later}",
        )
    lost = ConnectionResetError | ConnectionAbortedError | BrokenPipeError | EOFError
    if isinstance(exc, imaplib.IMAP4.abort | lost):
        return MailboxError(
            f"the connection was lost while {doing}: {_text(exc)}",
            where=label,
            hint=f"check that the server is up; {later}",
        )
    if isinstance(exc, OSError):
        return MailboxError(
            f"cannot reach the server: {exc.strerror or exc}",
            where=label,
            hint="check delivery.bounces.imap.host and port, and that the server is up; " + later,
        )
    if isinstance(exc, imaplib.IMAP4.error):
        return MailboxError(
            f"the server refused a command while {doing}: {_text(exc)}",
            where=label,
            hint=later,
        )
    return None


def _tls_context(settings: ImapConfig) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA file: {exc}",
            where="delivery.bounces.imap.ca_file",
            hint="give the path of a PEM file holding the CA certificate that signed the server's",
        ) from None


def _ok(reply: tuple[str, list[bytes | tuple[bytes, bytes] | None]]) -> list[bytes]:
    kind, data = reply
    if kind != "OK":
        raise imaplib.IMAP4.error(_text(data))
    return data  # type: ignore[return-value]  # the tuples (literals) are the FETCH caller's


def _quote(name: str) -> str:
    """An IMAP quoted string (the config lets no line break into a name)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, BaseException) and value.args:
        value = value.args[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:300] or "(no reason given)"


def _close(imap: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error, ValueError):
        imap.logout()
