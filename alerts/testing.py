"""A fake relay for tests of this project and of what is built on it: a real SMTP server
on a free loopback port that records what it accepts and injects the faults a relay
can produce. It needs the test extra (aiosmtpd): ``pip install 'area-alerts[test]'``.
It runs a little past 500 lines because each fault a relay can produce (a reply at any
stage, a dropped session, a per-session limit, a trickle) is a small piece of one handler.

    with SmtpSink(faults=Faults(reject={"gone@example.org"})) as sink:
        ...  # point delivery.smtp at sink.host, sink.port
        assert sink.message_ids() == [...]

Any reply at any stage can be chosen, for one recipient or for every session, once or
for good::

    sink.faults.inject("data", "554 5.7.1 refused", recipient="ann@example.org")
    sink.faults.inject("connect", "421 4.3.2 busy", times=2)
    sink.faults.inject("body", DROP, recipient="bob@example.org")  # cut off, no reply

``python -m alerts.testing`` runs a sink in its own process (for benchmarks): it prints
``PORT <n>``, then answers each line read on stdin with the number of messages accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

try:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
except ImportError as missing:  # a test-only dependency: say which extra brings it
    raise ImportError(
        "alerts.testing needs aiosmtpd, from the test extra: pip install 'area-alerts[test]'",
        name=missing.name,
    ) from missing

LOOPBACK = "127.0.0.1"
#: As an injected reply: close the connection without answering.
DROP = ""
#: Where a reply can be injected: the session's steps, in order. ``data`` is the DATA
#: command (before the body), ``body`` the reply after the body's final dot.
STAGES = ("connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "body", "rset", "quit")
#: Stages that belong to one message, so that a reply there can be for one recipient.
RECIPIENT_STAGES = ("rcpt", "data", "body")


@dataclass
class Injected:
    """A reply the sink gives at ``stage`` instead of its own: to every session, or only
    in transactions to ``recipient``; ``times`` times, or for good (None)."""

    stage: str
    reply: str
    recipient: str | None = None
    times: int | None = None


@dataclass
class Faults:
    """What the sink gets wrong, on purpose. Change the fields while it runs."""

    #: The next N connections are greeted with 421 and closed.
    refuse_connections: int = 0
    #: Recipients refused with 550 at RCPT (a hard bounce).
    reject: set[str] = field(default_factory=set)
    #: Recipients whose message is answered 451 after DATA (try again later).
    defer: set[str] = field(default_factory=set)
    #: Recipients whose message is cut off: the connection closes after DATA, no reply.
    drop: set[str] = field(default_factory=set)
    #: Recipients whose message is refused with 554 after DATA (content refused).
    refuse_message: set[str] = field(default_factory=set)
    #: Seconds to wait before answering MAIL, RCPT and DATA (a slow relay).
    delay: float = 0.0
    #: While True, the answer to DATA waits (to line clients up before anything is accepted).
    paused: bool = False
    #: Messages larger than this are refused with 552 5.3.4 at MAIL FROM (by the SIZE the
    #: client declares) or after the body.
    size_limit: int | None = None
    #: Replies chosen per stage (and recipient): see :meth:`inject`.
    injected: list[Injected] = field(default_factory=list)
    #: Messages a session may carry; MAIL FROM after that many is answered ``session_full``.
    per_session: int | None = None
    session_full: str = "452 4.5.3 Too many messages in this session"
    #: Seconds between the bytes of the replies within a transaction (a relay that
    #: trickles; 0: whole lines at once).
    trickle: float = 0.0

    def inject(
        self, stage: str, reply: str, *, recipient: str | None = None, times: int | None = None
    ) -> None:
        """Answer ``stage`` with ``reply`` (a whole reply line such as ``"451 4.3.0 later"``;
        :data:`DROP` closes the connection instead; a 421 closes it after answering)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        if recipient is not None and stage not in RECIPIENT_STAGES:
            raise ValueError(
                f"a reply at {stage} cannot be for one recipient: the sink does not know it yet"
            )
        self.injected.append(Injected(stage, reply, recipient, times))

    def take(self, stage: str, recipients: Iterable[str] = ()) -> str | None:
        """The reply injected for this stage and these recipients, if any (counting it)."""
        wanted = set(recipients)
        for rule in self.injected:
            if rule.stage != stage or (rule.recipient is not None and rule.recipient not in wanted):
                continue
            if rule.times is not None:
                if rule.times <= 0:
                    continue
                rule.times -= 1
            return rule.reply
        return None


@dataclass(frozen=True)
class Received:
    """One message the sink accepted (250 after DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str | None
    tls: bool
    user: str | None

    def message(self) -> EmailMessage:
        from email import message_from_bytes
        from email.policy import default

        message = message_from_bytes(self.data, policy=default)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        return message


class SmtpSink:
    """An aiosmtpd server on a free loopback port, in a thread of its own.

    ``tls_context``: a server context; with ``implicit_tls`` the whole session is TLS
    (port-465 style), otherwise STARTTLS is offered (and required with
    ``require_starttls``). ``users``: accounts for AUTH (then required, and only offered
    over TLS). ``keep``: keep message bodies (turn off for long benchmarks).
    ``on_accept``: called with each accepted message before the 250 goes back.
    ``smtputf8``: offer SMTPUTF8 (RFC 6531). ``resets`` counts the RSET commands received.
    """

    def __init__(
        self,
        *,
        faults: Faults | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: dict[str, str] | None = None,
        keep: bool = True,
        host: str = LOOPBACK,
        on_accept: Callable[[Received], None] | None = None,
        smtputf8: bool = True,
    ):
        self.faults = faults or Faults()
        self.smtputf8 = smtputf8
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls
        self.users = users
        self.keep = keep
        self.host = host
        self.on_accept = on_accept
        self.port = 0
        self.connections = 0
        self.resets = 0
        #: Message bodies that reached the sink whole, accepted or not.
        self.bodies = 0
        self.received: list[Received] = []
        self.count = 0
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sessions: list[SMTP] = []

    # -- running -------------------------------------------------------------------

    def start(self) -> SmtpSink:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-sink", daemon=True)
        self._thread.start()
        server_ssl = self.tls_context if self.implicit_tls else None
        future = asyncio.run_coroutine_threadsafe(
            loop.create_server(self._session, host=self.host, port=0, ssl=server_ssl), loop
        )
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it received -------------------------------------------------------------

    def message_ids(self) -> list[str]:
        """Message-IDs of the accepted messages, in order, without angle brackets."""
        with self._changed:
            return [r.message_id for r in self.received if r.message_id]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until at least ``count`` messages were accepted (False on timeout)."""
        return self.wait_until(lambda: self.count >= count, timeout)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Block until ``condition()`` holds, checked whenever a client connects or a
        message is accepted (False on timeout)."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def clear(self) -> None:
        with self._changed:
            self.received.clear()
            self.count = 0

    # -- the server side ----------------------------------------------------------------

    def _session(self) -> SMTP:
        with warnings.catch_warnings():
            # Implicit TLS: aiosmtpd cannot tell that AUTH does run over TLS.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            session = self._new_session()
        self._sessions.append(session)
        with self._changed:
            self.connections += 1
            self._changed.notify_all()
        return session

    def _new_session(self) -> SMTP:
        return _FaultySMTP(
            self,
            _Handler(self),
            loop=self._loop,
            hostname="sink.test",
            tls_context=None if self.implicit_tls else self.tls_context,
            require_starttls=self.require_starttls and not self.implicit_tls,
            authenticator=self._authenticate if self.users is not None else None,
            auth_required=self.users is not None,
            # With implicit TLS the whole session is encrypted, which aiosmtpd cannot see.
            auth_require_tls=not self.implicit_tls,
            enable_SMTPUTF8=self.smtputf8,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.users is None:
            return AuthResult(success=False, handled=False)
        user = data.login.decode("utf-8", "replace")
        ok = self.users.get(user) == data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    def _record(self, envelope: Envelope, session: Session) -> None:
        data = envelope.original_content or b""
        if isinstance(envelope.content, bytes):
            data = envelope.content
        item = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data if self.keep else b"",
            message_id=header_message_id(data),
            tls=self.implicit_tls or session.ssl is not None,
            user=session.auth_data if isinstance(session.auth_data, str) else None,
        )
        with self._changed:
            self.received.append(item)
            self.count += 1
            self._changed.notify_all()
        if self.on_accept is not None:
            self.on_accept(item)


class _FaultySMTP(SMTP):
    """aiosmtpd's server, answering with an injected reply where the faults say so."""

    def __init__(self, sink: SmtpSink, handler: Any, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._sink = sink

    async def _injected(self, stage: str, recipients: Iterable[str] = ()) -> bool:
        """Give the injected reply for ``stage``, if there is one; True if one was given."""
        reply = self._sink.faults.take(stage, recipients)
        if reply is None:
            return False
        await _answer(self, reply)
        return True

    async def _handle_client(self) -> None:
        faults = self._sink.faults
        if faults.refuse_connections > 0:
            faults.refuse_connections -= 1
            await self.push("421 4.3.2 sink.test Service not available, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        if await self._injected("connect"):
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._injected("ehlo"):
            await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._injected("ehlo"):
            await super().smtp_HELO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if not await self._injected("starttls"):
            await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        if not await self._injected("auth"):
            await super().smtp_AUTH(arg)

    accepted_here = 0

    async def smtp_MAIL(self, arg: str | None) -> None:
        limit = self._sink.faults.per_session
        if limit is not None and self.accepted_here >= limit:
            await _answer(self, self._sink.faults.session_full)
            return
        if not await self._injected("mail"):
            await super().smtp_MAIL(arg)

    async def push(self, status: Any) -> None:
        delay = self._sink.faults.trickle
        if not (delay and self.envelope is not None and self.envelope.mail_from):
            await super().push(status)
            return
        # Within a transaction: the reply a byte at a time.
        for byte in (status.encode() if isinstance(status, str) else status) + b"\r\n":
            transport = self.transport
            if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
                return
            transport.write(bytes([byte]))
            await asyncio.sleep(delay)

    async def smtp_DATA(self, arg: str) -> None:
        # The envelope stays as it is after a refused DATA command, as on a real relay:
        # a client that does not RSET meets "503 nested MAIL command" next.
        if not await self._injected("data", self.envelope.rcpt_tos if self.envelope else ()):
            await super().smtp_DATA(arg)

    async def smtp_RSET(self, arg: str) -> None:
        with self._sink._changed:
            self._sink.resets += 1
        if not await self._injected("rset"):
            await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        if not await self._injected("quit"):
            await super().smtp_QUIT(arg)


async def _answer(server: SMTP, reply: str) -> str:
    """Send ``reply`` (closing after a 421, or instead of it for DROP); returns the status
    a handler hook should give so that aiosmtpd sends nothing more."""
    if reply == DROP:
        if isinstance(server.transport, asyncio.Transport):
            server.transport.abort()
        return "250 the client never sees this"
    await server.push(reply)
    if reply.startswith("421") and server.transport is not None:
        server.transport.close()
    return reply


class _Handler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def _slow(self) -> None:
        if self.sink.faults.delay:
            await asyncio.sleep(self.sink.faults.delay)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._slow()
        limit = self.sink.faults.size_limit
        sizes = [o.split("=", 1)[1] for o in options if o.upper().startswith("SIZE=")]
        if limit is not None and sizes and sizes[0].isdigit() and int(sizes[0]) > limit:
            return f"552 5.3.4 Message size exceeds fixed maximum message size ({limit})"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._slow()
        if address in self.sink.faults.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        reply = self.sink.faults.take("rcpt", [address])
        if reply is not None:
            if reply == DROP or reply.startswith("421"):
                await _answer(server, reply)
                return "250 the client never sees this"
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink._changed:
            self.sink.bodies += 1
        await self._slow()
        faults = self.sink.faults
        while faults.paused:
            await asyncio.sleep(0.005)
        recipients = set(envelope.rcpt_tos)
        if recipients & faults.drop:
            if isinstance(server.transport, asyncio.Transport):
                server.transport.abort()
            # The reply below goes nowhere: the client saw the connection die after DATA.
            return "451 4.3.0 connection lost"
        if recipients & faults.defer:
            return "451 4.3.0 Temporary failure, try again later"
        if recipients & faults.refuse_message:
            return "554 5.6.0 Message content refused"
        content = envelope.original_content or b""
        if faults.size_limit is not None and len(content) > faults.size_limit:
            return (
                f"552 5.3.4 Message size exceeds fixed maximum message size ({faults.size_limit})"
            )
        reply = faults.take("body", recipients)
        if reply is not None:
            if reply == DROP:
                await _answer(server, reply)
                return "451 4.3.0 connection lost"
            return reply
        self.sink._record(envelope, session)
        if isinstance(server, _FaultySMTP):
            server.accepted_here += 1
        return "250 2.0.0 OK: queued"


def header_message_id(data: bytes) -> str | None:
    """The Message-ID header of raw message bytes, without angle brackets."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    for index, line in enumerate(lines):
        if line[:11].lower() == b"message-id:":
            value = line[11:]
            for more in lines[index + 1 :]:
                if not more[:1].isspace():
                    break
                value += more
            return bare_message_id(value.decode("ascii", "replace"))
    return None


def bare_message_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def main() -> None:
    """Run a sink in this process until stdin closes (see the module docstring)."""
    with SmtpSink(keep=False) as sink:
        print(f"PORT {sink.port}", flush=True)
        for _line in sys.stdin:
            print(sink.count, flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
