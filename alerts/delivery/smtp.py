"""The SMTP backend: one connection per worker, reused for ``per_connection`` messages,
TLS that verifies the relay's certificate, AUTH only over TLS, a shared rate limit.

Every relay answer is mapped to what it means for the outbox row (see
:mod:`alerts.delivery.base`): a message counts as delivered only when ``sendmail``
returned, that is when the relay answered 250 to the end of DATA.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from alerts.config import Secret, SmtpConfig
from alerts.delivery.base import (
    MessageRefused,
    RecipientRefused,
    RelayError,
    RelayUnavailable,
    TemporaryFailure,
)
from alerts.errors import ConfigError

CLOSING = 421  # the relay is closing the session: the connection is gone after this


class RateLimiter:
    """At most ``rate`` messages per second across every worker: evenly spaced slots,
    each worker sleeping until its slot (no burst, so a relay's limit is never hit)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
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
        *,
        password: Secret | None = None,
        local_hostname: str | None = None,
    ):
        self.settings = settings
        self.password = password
        self.context = tls_context(settings.ca_file) if settings.security != "none" else None
        self.limiter = RateLimiter(settings.rate) if settings.rate else None
        # smtplib looks the FQDN up on every connect otherwise.
        self.local_hostname = local_hostname or socket.getfqdn()

    @classmethod
    def from_config(cls, settings: SmtpConfig) -> SmtpSender:
        """Check what can be checked before sending: the password variable, the CA file."""
        return cls(settings, password=settings.password() if settings.username else None)

    @property
    def label(self) -> str:
        return f"{self.settings.host}:{self.settings.effective_port}"

    def connection(self) -> SmtpConnection:
        return SmtpConnection(self)

    def open(self) -> smtplib.SMTP:
        """A session ready for MAIL FROM: connected, TLS on if configured, logged in."""
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host, s.effective_port, local_hostname=self.local_hostname, timeout=s.timeout, context=self.context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.effective_port, local_hostname=self.local_hostname, timeout=s.timeout)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise RelayError(
                        "the relay does not offer STARTTLS; refusing to go on in clear",
                        where=self.label,
                        hint="use the relay's submission port, or security: ssl if it speaks TLS from the start",
                    )
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if s.username:
                if self.password is None:
                    raise RelayError("no password", where="delivery.smtp.password_env")
                smtp.login(s.username, self.password.reveal())
            return smtp
        except BaseException as exc:
            if smtp is not None:
                _close(smtp)
            raise _connect_error(exc, self.label) from None


def _connect_error(exc: BaseException, label: str) -> BaseException:
    """What a failure to open a session means: fix the config, or try again later."""
    if isinstance(exc, RelayError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayError(
            f"the relay's certificate is not trusted: {exc.verify_message}",
            where=label,
            hint="set delivery.smtp.ca_file to the CA that signed it, or fix the host name",
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return RelayError(
            f"the relay refused the credentials: {exc.smtp_code} {_text(exc.smtp_error)}",
            where=label,
            hint="check delivery.smtp.username and the password in the variable named by password_env",
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return RelayError(f"the relay does not support this: {exc}", where=label, hint="check delivery.smtp.security")
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
        return RelayError(f"the relay refused the session: {exc.smtp_code} {_text(exc.smtp_error)}", where=label)
    if isinstance(exc, smtplib.SMTPResponseException):
        return RelayUnavailable(f"{label}: {exc.smtp_code} {_text(exc.smtp_error)}")
    if isinstance(exc, OSError | smtplib.SMTPException):
        return RelayUnavailable(f"{label}: cannot connect: {_describe(exc)}")
    return exc


class SmtpConnection:
    """One worker's session, opened on first use and again after ``per_connection``
    messages or after the relay dropped it."""

    def __init__(self, sender: SmtpSender):
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None
        self._sent = 0

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        if self._smtp is not None and self._sent >= self.sender.settings.per_connection:
            self.close()
        if self._smtp is None:
            self._smtp = self.sender.open()
            self._sent = 0
        smtp = self._smtp
        options: tuple[str, ...] = ()
        if not (recipient.isascii() and envelope_from.isascii()):
            if not smtp.has_extn("smtputf8"):
                raise MessageRefused("the address is not ASCII and the relay does not offer SMTPUTF8")
            options = ("SMTPUTF8",)
        if self.sender.limiter:
            self.sender.limiter.wait()
        self._sent += 1
        try:
            smtp.sendmail(envelope_from, [recipient], message, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._after_reply(code)
            if code >= 500:
                raise RecipientRefused(f"{code} {_text(text)}") from None
            raise TemporaryFailure(f"{code} {_text(text)}") from None
        except smtplib.SMTPSenderRefused as exc:
            self._after_reply(exc.smtp_code)
            if exc.smtp_code >= 500:
                raise RelayError(
                    f"the relay refused the sender {envelope_from}: {exc.smtp_code} {_text(exc.smtp_error)}",
                    where=self.sender.label,
                    hint="check email.from: the relay must accept it as a sender for this account",
                ) from None
            raise TemporaryFailure(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPDataError as exc:
            self._after_reply(exc.smtp_code)
            if exc.smtp_code >= 500:
                raise MessageRefused(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
            raise TemporaryFailure(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            self._after_reply(exc.smtp_code)
            raise TemporaryFailure(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            # Dropped, timed out, or mid-DATA: we cannot know whether it went, so it is
            # tried again (with the same Message-ID) on a new connection.
            self._drop()
            raise TemporaryFailure(f"connection lost: {_describe(exc)}") from None

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                _close(smtp)

    def _after_reply(self, code: int) -> None:
        if code == CLOSING:
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            _close(self._smtp)
            self._smtp = None


def _close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text
