"""Mail that comes back later: delivery status notifications (RFC 3464) and feedback-loop
complaints (RFC 5965) read into data, and the signed per-message return paths they are
sent to. Only a verified return path, ``Action: failed`` and a 5.x.x status count."""

from __future__ import annotations

import pytest

from alerts.delivery.reports import Bounce, Complaint, Ignored, read_report
from alerts.delivery.returns import MAX_LOCAL_PART, Returned, ReturnPaths, organisational_domain

PATHS = ReturnPaths(["a secret key of this installation"], domain="alerts.example.org")


def dsn(action: str, status: str, *, to: str, recipient: str = "gone@example.net") -> bytes:
    """A notification laid out as Postfix writes one."""
    return f"""Return-Path: <>
Delivered-To: {to}
From: MAILER-DAEMON@relay.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B1"

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net
X-Postfix-Queue-ID: 4F1C21E0
Arrival-Date: Mon,  5 Jan 2026 08:00:00 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected:
    User unknown

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Kent Area Alerts <alerts@example.org>
To: {recipient}
Message-ID: <abc.123@example.org>
Subject: Alerts for Medway

--B1--
""".replace("\n", "\r\n").encode()


ARF = b"""From: feedback@isp.example
To: abuse@example.org
Subject: FW: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F1"

--F1
Content-Type: text/plain

This is an email abuse report.

--F1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <redacted@isp.example>

--F1
Content-Type: message/rfc822

From: Kent Area Alerts <alerts@example.org>
To: redacted
Message-ID: <xyz.789@example.org>
Subject: Alerts for Medway

hello
--F1--
"""


def test_a_return_path_names_its_message_and_subscriber_and_verifies() -> None:
    address = PATHS.address(123456, 42)
    local = address.partition("@")[0]
    assert address.startswith("bounces+") and address.endswith("@alerts.example.org")
    assert len(local.encode()) <= MAX_LOCAL_PART
    assert local == local.lower()
    assert PATHS.verify(address) == Returned(123456, 42)
    assert PATHS.verify(address.upper()) == Returned(123456, 42), (
        "a relay that folds case breaks it"
    )


@pytest.mark.parametrize(
    "forged",
    [
        "bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@alerts.example.org",
        "bounces@alerts.example.org",
        "someone@alerts.example.org",
        "not an address",
    ],
)
def test_a_forged_or_foreign_return_path_does_not_verify(forged: str) -> None:
    assert PATHS.verify(forged) is None


def test_another_installations_key_or_domain_does_not_verify() -> None:
    other = ReturnPaths(["another key altogether"], domain="alerts.example.org")
    elsewhere = ReturnPaths(["a secret key of this installation"], domain="example.net")
    assert PATHS.verify(other.address(1, 2)) is None
    assert PATHS.verify(elsewhere.address(1, 2)) is None


def test_a_rotated_key_still_verifies_the_old_return_paths() -> None:
    rotated = ReturnPaths(
        ["the new key", "a secret key of this installation"], domain="alerts.example.org"
    )
    assert rotated.verify(PATHS.address(7, 8)) == Returned(7, 8)


def test_a_failed_dsn_with_a_5xx_status_is_a_bounce_with_its_return_path_and_message_id() -> None:
    to = PATHS.address(5, 9)
    report = read_report(dsn("failed", "5.1.1", to=to))
    assert isinstance(report, tuple)
    [bounce] = report
    assert bounce == Bounce(
        recipient="gone@example.net",
        status="5.1.1",
        diagnostic="smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
        return_paths=(to,),
        message_id="abc.123@example.org",
    )


@pytest.mark.parametrize(
    ("action", "status"),
    [("delayed", "4.4.1"), ("failed", "4.4.7"), ("delivered", "2.0.0"), ("relayed", "2.0.0")],
)
def test_a_delay_a_temporary_failure_or_a_success_notice_is_never_a_bounce(
    action: str, status: str
) -> None:
    report = read_report(dsn(action, status, to=PATHS.address(5, 9)))
    assert isinstance(report, Ignored) and "no permanent failure" in report.reason


def test_an_auto_reply_is_never_a_bounce() -> None:
    reply = b"From: ann@example.net\r\nTo: alerts@example.org\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nAway.\r\n"
    assert isinstance(read_report(reply), Ignored)


def test_a_feedback_loop_complaint_names_the_message_id_even_with_the_recipient_redacted() -> None:
    report = read_report(ARF)
    assert report == Complaint(
        "abuse", "xyz.789@example.org", ("abuse@example.org",), "redacted@isp.example"
    )


@pytest.mark.parametrize(
    ("domain", "organisational"),
    [
        ("bounces.alerts.kent.police.uk", "kent.police.uk"),
        ("mail.example.org", "example.org"),
        ("example.co.uk", "example.co.uk"),
    ],
)
def test_the_organisational_domain_is_what_spf_and_dmarc_align_on(
    domain: str, organisational: str
) -> None:
    assert organisational_domain(domain) == organisational
