"""The limits count one mailbox and one client however they are spelt."""

from __future__ import annotations

import pytest

from alerts.subscribers.limit_keys import limit_client, limit_mailbox


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("victim+1@example.net", "victim@example.net"),
        ("Victim+Alerts+x@Example.NET", "victim@example.net"),
        ("victim@example.net", "victim@example.net"),
        ("j.o.bloggs+a@gmail.com", "jobloggs@gmail.com"),
        ("Jo.Bloggs@googlemail.com", "jobloggs@gmail.com"),
        ("jo.bloggs@example.org", "jo.bloggs@example.org"),  # dots matter elsewhere
        ("+tag@example.org", "+tag@example.org"),  # nothing before the tag: left as it is
    ],
)
def test_a_mailbox_is_counted_without_its_tag_and_for_gmail_its_dots(
    address: str, mailbox: str
) -> None:
    assert limit_mailbox(address) == mailbox


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_a_client_is_an_ipv4_address_unmapped_or_an_ipv6_slash_64(host: str, client: str) -> None:
    assert limit_client(host) == client
