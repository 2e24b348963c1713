"""A body's lines that start with a dot reach the relay as written (RFC 5321 4.5.2: the
sender doubles a leading dot, the receiver takes one off), whatever the body holds: a
real aiosmtpd server on loopback un-stuffs what :class:`SmtpConnection` sent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.clock import ManualClock
from alerts.config import SmtpConfig
from alerts.delivery.smtp import SmtpSender
from alerts.testing import SmtpSink
from tests.support import NOW

HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n"

#: Lines as a body has them: dots at the start, alone, doubled, text, empty.
LINES = st.lists(
    st.sampled_from([b".", b"..", b".hidden", b"text", b"", b". .", b"a.b", b"\xc2\xa3."]),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES)
def test_every_line_starting_with_a_dot_arrives_as_written(lines: list[bytes]) -> None:
    body = b"\r\n".join(lines) + b"\r\n"
    assert relayed(HEAD + body) == HEAD + body


def test_a_body_starting_with_a_dot_keeps_it() -> None:
    assert relayed(b".\r\n.x\r\n") == b".\r\n.x\r\n"


def relayed(message: bytes) -> bytes:
    """``message`` sent through an SmtpConnection, as the relay received it."""
    with SmtpSink() as sink:
        sender = SmtpSender(
            SmtpConfig(host=sink.host, port=sink.port, security="none"),
            ManualClock(NOW),
            local_hostname="test.local",
        )
        connection = sender.connection()
        try:
            connection.send("a@example.org", "b@example.org", message)
        finally:
            connection.close()
        [received] = sink.received
    return received.data
