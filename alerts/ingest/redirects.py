"""Where an upstream feed may redirect us: the redirect policy of a feed source.

A feed's operator may move it (a new path, http to https), but a redirect is also how
a compromised or careless upstream points a fetcher at something it must not reach:
another service on the same machine (a different port), a ``file:`` or ``ftp:`` URL,
or an address inside the network the fetcher runs in. So a redirect is followed only

- to ``http`` or ``https``;
- to the feed's own host and port (``http`` to ``https`` on the default ports is the
  same place), or to a host the source lists in ``redirect_hosts`` (``host`` for its
  default ports, ``host:port`` for that port);
- never from a feed whose host has public addresses to a host with any loopback,
  private, link-local or otherwise non-public address.

The address check resolves names when the redirect is checked; a name that resolves
differently a moment later (DNS rebinding) is not caught here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import SplitResult, urlsplit

from alerts.errors import SourceError

DEFAULT_PORTS = {"http": 80, "https": 443}
_HINT = "if the feed really moved there, put its new URL in config.yaml (or list the host in 'redirect_hosts')"

Resolver = Callable[[str, int], Iterable[str]]


def resolve_addresses(host: str, port: int) -> list[str]:
    """The IP addresses ``host`` resolves to (none when it does not resolve: then the
    request itself fails, and says so)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_redirect(
    feed_url: str,
    target: str,
    allowed_hosts: Iterable[str] = (),
    *,
    resolve: Resolver = resolve_addresses,
) -> None:
    """Raise :class:`SourceError` (naming the feed) unless a redirect from the feed at
    ``feed_url`` to ``target`` (absolute) may be followed."""
    origin, goal = urlsplit(feed_url), urlsplit(target)

    def refuse(why: str) -> SourceError:
        return SourceError(f"redirect to {target} refused: {why}", where=feed_url, hint=_HINT)

    if goal.scheme not in DEFAULT_PORTS or not goal.hostname:
        raise refuse("only http and https addresses are followed")
    try:
        goal_port = goal.port or DEFAULT_PORTS[goal.scheme]
    except ValueError:
        raise refuse("its port is not a number") from None
    if not (
        _same_place(origin, goal, goal_port)
        or _listed(goal.hostname, goal_port, goal.scheme, allowed_hosts)
    ):
        raise refuse(f"{goal.hostname}:{goal_port} is not the feed's own host and port")
    origin_port = origin.port or DEFAULT_PORTS.get(origin.scheme, 80)
    if _public(_addresses(origin.hostname or "", origin_port, resolve)):
        goal_addresses = _addresses(goal.hostname, goal_port, resolve)
        inside = [a for a in goal_addresses if not ipaddress.ip_address(a).is_global]
        if inside:
            raise refuse(
                f"it leads from a public address to a private or loopback one ({inside[0]})"
            )


def _same_place(origin: SplitResult, goal: SplitResult, goal_port: int) -> bool:
    if (origin.hostname or "") != goal.hostname:
        return False
    origin_port = origin.port or DEFAULT_PORTS.get(origin.scheme, 80)
    if origin_port == goal_port:
        return True
    # The one move between ports that stays in place: http upgraded to https.
    return (origin.scheme, origin_port, goal.scheme, goal_port) == ("http", 80, "https", 443)


def _listed(host: str, port: int, scheme: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        entry = entry.lower()
        if entry.startswith("["):  # an IPv6 address: [::1] or [::1]:8080
            name, _, listed_port = entry[1:].partition("]")
            listed_port = listed_port.removeprefix(":")
        else:
            name, _, listed_port = entry.partition(":")
        if name != host:
            continue
        if listed_port:
            if listed_port.isdigit() and int(listed_port) == port:
                return True
        elif port == DEFAULT_PORTS[scheme]:
            return True
    return False


def _addresses(host: str, port: int, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]  # an address already: nothing to look up
    except ValueError:
        return list(resolve(host, port))


def _public(addresses: Iterable[str]) -> bool:
    found = [ipaddress.ip_address(a) for a in addresses]
    return bool(found) and all(a.is_global for a in found)
