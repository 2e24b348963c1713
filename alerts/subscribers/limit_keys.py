"""What the form's limits count by, so that nobody slips past them by spelling one
mailbox or one client many ways.

Only the limits use these: an address's identity (its row) and its opt-out hash are the
whole address in lower case, so ``jo+alerts@`` stays its own subscription and its own
opt-out, while its mail counts against ``jo@``'s allowance.
"""

from __future__ import annotations

import ipaddress

#: Providers for which dots in the local part do not matter, and which are one mailbox
#: under either name (gmail.com and googlemail.com deliver to the same account).
DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
#: An IPv6 client is counted by its /64: one subscriber line or host is given a whole
#: /64, and can pick a new address in it for every request.
IPV6_CLIENT_PREFIX = 64


def limit_mailbox(email: str) -> str:
    """The mailbox an address delivers to, as the limits count it: in lower case, a
    ``+tag`` dropped (``jo+1@`` and ``jo+2@`` reach ``jo@``), and for Gmail the dots too
    (``j.o@googlemail.com`` is ``jo@gmail.com``)."""
    local, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return email.strip().lower()
    local = local.split("+", 1)[0] or local
    domain = domain.rstrip(".")
    if domain in DOTLESS:
        local = local.replace(".", "") or local
        domain = DOTLESS[domain]
    return f"{local}@{domain}"


def limit_client(host: str) -> str:
    """The client a request came from, as the limits count it: an IPv4 address as it is
    (also when it arrives IPv4-mapped, ``::ffff:192.0.2.1``), an IPv6 address by its
    /64. Anything else (a Unix socket's name, "unknown") as it is."""
    try:
        address = ipaddress.ip_address(host.strip().split("%", 1)[0])
    except ValueError:
        return host.strip().lower()
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)
