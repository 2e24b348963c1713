"""The SMTP backend: one connection per worker, reused for ``per_connection`` messages,
TLS that verifies the relay's certificate, AUTH only over TLS, a shared rate limit.

Every relay answer is mapped, for the stage it came at, to what it means for the outbox
row (see :mod:`alerts.delivery.base`): 4xx (and 552 at RCPT TO) is temporary, 5xx is
this message's failure or bounce, and only what condemns the relay itself (refused,
TLS, credentials, 421) is raised as the relay's. A message counts as delivered only when
the relay answered 250 to the end of DATA.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from alerts.clock import Clock
from alerts.config import Secret, SmtpConfig
from alerts.delivery.base import (
    MessageRefused,
    NoFinalReply,
    RecipientRefused,
    RelayError,
    RelayUnavailable,
    SenderRefused,
    SessionLost,
    Stage,
    TemporaryFailure,
)
from alerts.errors import ConfigError

log = logging.getLogger(__name__)

CLOSING = 421  # the relay is closing the session: the connection is gone after this
INSUFFICIENT_STORAGE = 452  # at MAIL FROM after some messages: often "too many messages"
MAILBOX_FULL = 552  # at RCPT TO temporary (RFC 5321 4.5.3.1.10); at MAIL FROM the SIZE


class RateLimiter:
    """At most ``rate`` messages per second across every worker: evenly spaced slots,
    each worker sleeping until its slot (no burst, so a relay's limit is never hit)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


def tls_context(ca_file: Any = None) -> ssl.SSLContext:
    """A client context that verifies the certificate and host name (smtplib does
    neither unless given one). ``ca_file``: trust this CA instead of the system's."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA file: {exc}",
            where="delivery.smtp.ca_file",
            hint="give the path of a PEM file holding the CA certificate that signed the relay's",
        ) from None


class SmtpSender:
    """A configured relay. ``connection()`` gives each worker its own session."""

    def __init__(
        self,
        settings: SmtpConfig,
        clock: Clock,
        *,
        password: Secret | None = None,
        local_hostname: str | None = None,
    ):
        self.settings = settings
        self.password = password
        self.context = tls_context(settings.ca_file) if settings.security != "none" else None
        self.limiter = RateLimiter(settings.rate, clock=clock.monotonic) if settings.rate else None
        # smtplib looks the FQDN up on every connect otherwise.
        self.local_hostname = local_hostname or socket.getfqdn()
        self.monotonic = clock.monotonic
        #: Messages per session: ``per_connection``, or fewer once the relay showed its limit.
        self.per_connection = settings.per_connection
        self._learn = threading.Lock()

    def learn_limit(self, carried: int, reply: str) -> None:
        """The relay refused the next message on a session that carried ``carried``: open
        a new session after that many from now on (every worker shares this)."""
        with self._learn:
            if carried < self.per_connection:
                log.info(
                    "the relay %s takes %d messages per session (it answered %r to the next);"
                    " sending %d per session from now on",
                    self.label,
                    carried,
                    reply,
                    carried,
                )
                self.per_connection = carried

    @classmethod
    def from_config(cls, settings: SmtpConfig, clock: Clock) -> SmtpSender:
        """Check what can be checked before sending: the password variable, the CA file."""
        return cls(settings, clock, password=settings.password() if settings.username else None)

    @property
    def label(self) -> str:
        return f"{self.settings.host}:{self.settings.effective_port}"

    def connection(self) -> SmtpConnection:
        return SmtpConnection(self)

    def open(self) -> smtplib.SMTP:
        """A session ready for MAIL FROM: connected, TLS on if configured, logged in.

        Raises :class:`RelayUnavailable` for what may pass (refused, timed out, a 4xx or
        421 at any step) and :class:`RelayError` for what will not until the config or
        the relay is fixed (a 5xx greeting or EHLO, TLS, credentials)."""
        s = self.settings
        smtp: smtplib.SMTP | None = None
        stage = Stage.CONNECT
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host,
                    s.effective_port,
                    local_hostname=self.local_hostname,
                    timeout=s.timeout,
                    context=self.context,
                )
            else:
                smtp = smtplib.SMTP(
                    s.host, s.effective_port, local_hostname=self.local_hostname, timeout=s.timeout
                )
            stage = Stage.EHLO
            _hello(smtp)
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise RelayError(
                        "the relay does not offer STARTTLS; refusing to go on in clear",
                        where=self.label,
                        hint="use the relay's submission port, or security: ssl if it speaks TLS from the start",
                    )
                stage = Stage.STARTTLS
                smtp.starttls(context=self.context)
                stage = Stage.EHLO
                _hello(smtp)
            if s.username:
                if self.password is None:
                    raise RelayError("no password", where="delivery.smtp.password_env")
                stage = Stage.AUTH
                smtp.login(s.username, self.password.reveal())
            return smtp
        except BaseException as exc:
            if smtp is not None:
                _close(smtp)
            raise _connect_error(exc, self.label, stage) from None


def _hello(smtp: smtplib.SMTP) -> None:
    """EHLO, or HELO from a relay that refuses EHLO with 5xx (it predates ESMTP)."""
    code, text = smtp.ehlo()
    if code == 250:
        return
    if 500 <= code < 600:
        code, text = smtp.helo()
        if code == 250:
            return
    raise smtplib.SMTPHeloError(code, text)


def _connect_error(exc: BaseException, label: str, stage: Stage) -> BaseException:
    """What a failure to open a session means: fix the config, or try again later."""
    if isinstance(exc, RelayError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayError(
            f"the relay's certificate is not trusted: {exc.verify_message}",
            where=label,
            hint="set delivery.smtp.ca_file to the CA that signed it, or fix the host name",
        )
    if isinstance(exc, ssl.SSLError):
        return RelayError(
            f"TLS failed at {stage}: {exc.reason or exc}",
            where=label,
            hint="check delivery.smtp.security (ssl for a port that speaks TLS at once, starttls for 587) and port",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if not 500 <= exc.smtp_code < 600:  # 4xx, 421, or no proper reply: it may pass
            return RelayUnavailable(f"{label} answered {stage} with {reply}", stage)
        if stage is Stage.AUTH:
            return RelayError(
                f"the relay refused the credentials: {reply}",
                where=label,
                hint="check delivery.smtp.username and the password in the variable named by password_env",
            )
        return RelayError(f"the relay refused the session at {stage}: {reply}", where=label)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return RelayError(
            f"the relay does not support this: {exc}",
            where=label,
            hint="check delivery.smtp.security",
        )
    if (
        isinstance(exc, smtplib.SMTPException)
        and stage is Stage.AUTH
        and not isinstance(exc, smtplib.SMTPServerDisconnected)
    ):
        return RelayError(
            f"cannot log in: {exc}",
            where=label,
            hint="check that the relay offers AUTH PLAIN or LOGIN",
        )
    if isinstance(exc, OSError | smtplib.SMTPException):
        doing = "cannot connect" if stage is Stage.CONNECT else f"connection lost at {stage}"
        return RelayUnavailable(f"{label}: {doing}: {_describe(exc)}", stage)
    return exc


class SmtpConnection:
    """One worker's session, opened on first use and again after ``per_connection``
    messages or after the relay dropped it.

    Each message is one explicit transaction (MAIL FROM, RCPT TO, DATA, the body) so
    that every reply is read for the stage it came at. After a refusal at MAIL FROM,
    RCPT TO or the DATA command the transaction is still open on the relay's side, so
    it is reset (RSET; the connection is dropped if that fails too): the next message
    must not meet "503 nested MAIL command".
    """

    def __init__(self, sender: SmtpSender):
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None
        self._reader: _DeadlineReader | None = None
        self._sent = 0

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        try:
            self._send(envelope_from, recipient, message)
        except _ConnectionLimit as limit:
            # The relay takes only so many messages per session (421 or 452 at MAIL FROM
            # once it carried some): that is nobody's failure. Carry on with a new
            # session, and open new ones that much sooner from now on.
            self.sender.learn_limit(limit.carried, limit.reply)
            self._send(envelope_from, recipient, message)

    def _send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if self._smtp is not None and self._sent >= self.sender.per_connection:
            self.close()
        if self._smtp is None:
            self._smtp = self.sender.open()
            self._reader = _DeadlineReader.install(
                self._smtp, self.sender.settings.timeout, self.sender.monotonic
            )
            self._sent = 0
        smtp = self._smtp
        reader = self._reader
        assert reader is not None
        options: list[str] = []
        if not (recipient.isascii() and envelope_from.isascii()):
            if not smtp.has_extn("smtputf8"):
                raise TemporaryFailure(
                    f"the address is not ASCII and the relay ({self.sender.label}) does not offer SMTPUTF8;"
                    " it stays queued until the relay does",
                    Stage.EHLO,
                )
            options.append("SMTPUTF8")
        if smtp.has_extn("size"):
            # Lets a relay refuse a message over its limit at MAIL FROM, before the body.
            options.append(f"SIZE={len(message)}")
        if self.sender.limiter:
            self.sender.limiter.wait()
        carried, self._sent = self._sent, self._sent + 1
        stage = Stage.MAIL
        try:
            reader.start()
            code, text = _command(smtp, "mail", f"FROM:<{envelope_from}>", options)
            if code != 250:
                if carried and code in (CLOSING, INSUFFICIENT_STORAGE):
                    self._drop()
                    raise _ConnectionLimit(carried, f"{code} {_text(text)}")
                self._refused(stage, code, text, envelope_from)
            stage = Stage.RCPT
            reader.start()
            code, text = _command(smtp, "rcpt", f"TO:<{recipient}>", ())
            if code not in (250, 251):
                self._refused(stage, code, text, envelope_from)
            stage = Stage.DATA
            reader.start()
            smtp.putcmd("data")
            code, text = smtp.getreply()
            if code != 354:
                self._refused(stage, code, text, envelope_from)
            reader.start()
            smtp.send(_dot_stuffed(message))
            stage = Stage.BODY  # from here on the relay may have taken it
            code, text = smtp.getreply()
            if code != 250:
                self._refused(stage, code, text, envelope_from)
        except (OSError, smtplib.SMTPException) as exc:
            # Dropped or too slow. Before the body's end the relay cannot have taken it;
            # after, we cannot know whether it went.
            self._drop()
            if stage is Stage.BODY:
                raise NoFinalReply(
                    f"{stage}: no reply after the body: {_describe(exc)}"
                    + (
                        f" (none within {self.sender.settings.timeout:g} s)"
                        if reader.timed_out
                        else ""
                    ),
                    timed_out=reader.timed_out,
                ) from None
            raise SessionLost(f"{stage}: connection lost: {_describe(exc)}", stage) from None

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            try:
                smtp.quit()  # whatever QUIT gets, the messages were accepted already
            except (OSError, smtplib.SMTPException):
                _close(smtp)

    def _refused(self, stage: Stage, code: int, text: bytes | str, envelope_from: str) -> NoReturn:
        """Raise what a reply other than the expected one means for this message, with
        the session left ready for the next (reset, or dropped)."""
        reply = f"{stage}: {code} {_text(text)}"
        if code == CLOSING:
            self._drop()
            raise SessionLost(f"the relay closed the session at {reply}", stage)
        if not 400 <= code < 600:  # not an answer SMTP allows here: start afresh
            self._drop()
            raise SessionLost(f"{stage}: unexpected reply {code} {_text(text)}", stage)
        if stage is not Stage.BODY:  # after the body the relay has ended the transaction
            self._reset()
        detail = _text(text)
        if code < 500 or (stage is Stage.RCPT and code == MAILBOX_FULL):
            # RFC 5321 4.5.3.1.10: 552 at RCPT TO is to be treated as temporary.
            raise TemporaryFailure(reply, stage, code=code, detail=detail)
        if stage is Stage.RCPT:
            raise RecipientRefused(reply, stage, code=code, detail=detail)
        if stage is Stage.MAIL and not _about_size(code, text):
            raise SenderRefused(reply, envelope_from, code=code, detail=detail)
        raise MessageRefused(reply, stage, code=code, detail=detail)

    def _reset(self) -> None:
        if self._smtp is None:
            return
        try:
            code = self._smtp.rset()[0]
        except (OSError, smtplib.SMTPException):
            code = -1
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            _close(self._smtp)
            self._smtp = None


def _about_size(code: int, text: bytes | str) -> bool:
    """A refusal at MAIL FROM for the SIZE given (RFC 1870: 552; enhanced code 5.3.4)."""
    return code == MAILBOX_FULL or _text(text).startswith("5.3.4")


def _close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text


class _ConnectionLimit(Exception):
    def __init__(self, carried: int, reply: str):
        super().__init__(reply)
        self.carried = carried
        self.reply = reply


def _dot_stuffed(message: bytes) -> bytes:
    """The body as DATA sends it (RFC 5321 4.5.2): leading dots doubled, CRLF-ended,
    then the lone dot. The same as smtplib's ``data`` does."""
    # bytes.replace, not a regular expression: the same lines, a fifth of the CPU (this
    # runs over every message's whole body, holding the GIL).
    body = message.replace(b"\n.", b"\n..")
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _command(smtp: smtplib.SMTP, verb: str, path: str, options: Sequence[str]) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO for an address checked already (``<address>``, as
    ``smtplib.SMTP.mail`` and ``rcpt`` send it, without ``email.utils.parseaddr`` on
    every message). smtplib's ``putcmd`` refuses a CR or LF."""
    if "SMTPUTF8" in options:
        smtp.command_encoding = "utf-8"  # as smtplib's mail() does for SMTPUTF8
    smtp.putcmd(verb, path + "".join(" " + option for option in options))
    return smtp.getreply()


class _DeadlineReader:
    """Reads the relay's replies for smtplib with one deadline per command: ``timeout``
    seconds for the whole reply, however it trickles in (a socket timeout alone applies
    to each read, and a relay sending a byte a second never trips it). Installed as the
    session's ``file``, which is all smtplib reads replies from."""

    def __init__(self, sock: socket.socket, timeout: float, monotonic: Callable[[], float]):
        self.sock = sock
        self.timeout = timeout
        self.monotonic = monotonic
        self.buffer = b""
        self.deadline = monotonic() + timeout
        self.timed_out = False

    @classmethod
    def install(
        cls, smtp: smtplib.SMTP, timeout: float, monotonic: Callable[[], float]
    ) -> _DeadlineReader:
        if smtp.file is not None:  # already reading: keep what it buffered
            smtp.file.close()
        assert smtp.sock is not None  # open() returns a connected session
        reader = cls(smtp.sock, timeout, monotonic)
        smtp.file = reader
        return reader

    def start(self) -> None:
        """A command goes now: its reply (and sending it) must be done within ``timeout``."""
        self.deadline = self.monotonic() + self.timeout
        self.timed_out = False
        self.sock.settimeout(self.timeout)

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0 or (0 <= limit <= len(self.buffer)):
                cut = end + 1 if end >= 0 else limit
                if 0 <= limit < cut:
                    cut = limit
                line, self.buffer = self.buffer[:cut], self.buffer[cut:]
                return line
            left = self.deadline - self.monotonic()
            if left <= 0:
                self.timed_out = True
                raise TimeoutError(f"no complete reply within {self.timeout:g} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                self.timed_out = True
                raise
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line

            self.buffer += chunk

    def close(self) -> None:
        self.buffer = b""
