"""The outbound address guard: webhooks and S3 endpoints reach public addresses only.

A destination's URL host is resolved and every address it resolves to must be public: no
loopback, link-local (cloud metadata), private, shared (100.64/10), multicast, unspecified or
reserved address, IPv4 or IPv6, including IPv4 addresses inside IPv6 (`::ffff:127.0.0.1`,
NAT64, 6to4). Numeric host forms the resolver accepts (`2130706433`, `0177.0.0.1`) resolve to
the address they stand for and are judged by it. A destination that says
`allow_private_network: true` is exempt (local receivers, tests).

The check runs at apply (`url_problem`) and again at every connection: the guarded HTTP
connections below resolve the host themselves, check every address, and connect to the
address they checked, so a DNS answer that changes between the check and the connection
(DNS rebinding) gains nothing. Guarded sessions do not use proxies from the environment
(the proxy, not this process, would pick the address). SMTP is not covered.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOW_HINT = "set allow_private_network: true on the destination to allow a private receiver"


class BlockedAddressError(Exception):
    """A host that resolves to an address outbound requests must not reach.

    Deliberately not an OSError: connection pools retry OSErrors, this must stop at once.
    """


def address_class(ip: IPAddress) -> str | None:
    """Why `ip` must not be reached ("loopback", "private", ...), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_class(embedded)
            if reason:
                return reason
        if ip.is_site_local:
            return "site-local"
    for reason, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if test:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def parse_ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")


def resolve(host: str, port: int | None) -> list[tuple[int, IPAddress, tuple]]:
    """(family, address, sockaddr) for every address `host` resolves to (socket.gaierror if none)."""
    infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    seen, found = set(), []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr[0] in seen:
            continue
        seen.add(sockaddr[0])
        found.append((family, parse_ip(sockaddr[0]), sockaddr))
    return found


def checked_addresses(host: str, port: int | None, what: str = "host") -> list[str]:
    """Every address of `host`, all public, as connectable strings; else BlockedAddressError."""
    host = host.strip("[]").rstrip(".")
    addresses = resolve(host, port)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no IPv4 or IPv6 address")
    for _, ip, _ in addresses:
        reason = address_class(ip)
        if reason:
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise BlockedAddressError(
                f"{what} {shown} is {_article(reason)} {reason} address; outbound requests to it are refused "
                f"({ALLOW_HINT})"
            )
    return [str(ip) for _, ip, _ in addresses]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def url_problem(url: str, what: str = "url") -> str | None:
    """At apply: why `url` must not be used, or None. A host that does not resolve here is not
    refused (it may resolve where deliveries run); every connection checks again."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"{what} {url!r} cannot be parsed: {exc}"
    if not host:
        return f"{what} {url!r} has no host"
    try:
        checked_addresses(host, port, f"{what} host")
    except BlockedAddressError as exc:
        return str(exc)
    except (socket.gaierror, UnicodeError, OSError):
        return None
    return None


# ---------------------------------------------------------------- guarded connections


class _GuardedConnection:
    """Mixin for urllib3 connections: resolve, check every address, connect to a checked one.

    TLS still verifies the certificate against the URL's host name (urllib3 uses `host` for
    SNI and verification; only the address dialled is pinned).
    """

    def _new_conn(self):
        host = self._dns_host
        try:
            addresses = checked_addresses(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last_error = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:  # try the next address
                    last_error = exc
        finally:
            self._dns_host = host
        raise last_error


class GuardedHTTPConnection(_GuardedConnection, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def http_session(allow_private_network: bool) -> requests.Session:
    """A requests session for one destination: guarded unless it allows private networks."""
    session = requests.Session()
    if not allow_private_network:
        session.trust_env = False  # no proxy from the environment: we pick the address
        adapter = GuardedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def guard_boto_client(client) -> None:
    """Make a botocore client dial only checked public addresses (see the module docstring)."""
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
        AWSHTTPSConnection,
        AWSHTTPSConnectionPool,
    )

    class _Http(_GuardedConnection, AWSHTTPConnection):
        pass

    class _Https(_GuardedConnection, AWSHTTPSConnection):
        pass

    class _HttpPool(AWSHTTPConnectionPool):
        ConnectionCls = _Http

    class _HttpsPool(AWSHTTPSConnectionPool):
        ConnectionCls = _Https

    # botocore has no public hook for its connection classes; fail closed if this one moves.
    pools = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None),
                    "_pool_classes_by_scheme", None)
    if not isinstance(pools, dict):
        raise RuntimeError("cannot guard this botocore version's connections; refusing to connect")
    pools.update({"http": _HttpPool, "https": _HttpsPool})


def blocked_cause(exc: BaseException) -> BlockedAddressError | None:
    """The BlockedAddressError behind an exception a client library wrapped, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BlockedAddressError):
            return exc
        wrapped = getattr(exc, "kwargs", {}).get("error") if isinstance(getattr(exc, "kwargs", None), dict) else None
        exc = wrapped or exc.__cause__ or exc.__context__
        seen += 1
    return None
