"""Which URLs a service may call on someone's say-so (sources, webhooks): one check for all.

A URL an admin or a department registers is later called by the service, and
what comes back (status codes, connection errors) is shown to whoever
registered it; unchecked, that is a port scanner of the service's own network.
So: http(s) only, no user-info, no fragment; hosts in ``allowed_outbound_hosts``
when that list is set; and in production no loopback, link-local or private
address unless listed. Development allows those: the demo and the tests run on
127.0.0.1.

The check runs twice. At registration (``OutboundPolicy.check``), so a bad URL
is refused with a clear error and never stored. And at every call, through
``OutboundTransport``: the URL again (the settings may have changed since it was
stored), and a name's addresses when the connection resolves it, by the
resolver whose answers the connection then uses. A name that resolved to a
public address at registration and to 127.0.0.1 later (DNS rebinding) is
refused at the call; nothing is connected to an address that was not checked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport

from schema.errors import InvalidInput

__all__ = [
    "URL_NOT_ALLOWED",
    "CheckedResolver",
    "OutboundPolicy",
    "OutboundTransport",
    "UrlNotAllowed",
    "checked_session",
]

URL_NOT_ALLOWED: Final = "URL_NOT_ALLOWED"
MAX_URL_LENGTH: Final = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlNotAllowed(InvalidInput):
    """A URL the service will not call; ``code`` is always ``URL_NOT_ALLOWED``."""

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__(message, code=URL_NOT_ALLOWED, field=field)


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _internal(address: IPAddress) -> bool:
    # Loopback, link-local, private, shared, reserved, unspecified, multicast: anything not global.
    return not address.is_global or address.is_multicast


class OutboundPolicy:
    """Which URLs may be called; ``allowed_hosts`` are names, ``*.suffix`` or CIDR.

    A listed host is allowed whatever it resolves to. With a list, every other
    host is refused. Without one, production refuses any host that is or resolves
    to a loopback, link-local or private address.
    """

    def __init__(self, allowed_hosts: Sequence[str] = (), *, allow_internal: bool) -> None:
        self.allowed_hosts = [h.strip().lower() for h in allowed_hosts if h.strip()]
        self.allow_internal = allow_internal

    def _listed(self, host: str, address: IPAddress | None) -> bool:
        for pattern in self.allowed_hosts:
            if address is not None and "/" in pattern:
                try:
                    if address in ipaddress.ip_network(pattern, strict=False):
                        return True
                except ValueError:
                    continue
            elif fnmatch.fnmatchcase(host, pattern):
                return True
        return False

    @property
    def checks_addresses(self) -> bool:
        """Whether a name's fate depends on what it resolves to (production, no list)."""
        return not self.allow_internal and not self.allowed_hosts

    def check_addresses(
        self, host: str, addresses: Sequence[IPAddress], *, field: str = "url"
    ) -> None:
        """Refuse ``host`` (``UrlNotAllowed``) unless it may be called at ``addresses``."""
        if self._listed(host, _address(host)):
            return
        if self.allowed_hosts:
            raise UrlNotAllowed(f"the host {host} is not in allowed_outbound_hosts", field=field)
        if self.allow_internal:
            return
        if not addresses:
            raise UrlNotAllowed(f"the host {host} does not resolve", field=field)
        internal = sorted(str(a) for a in addresses if _internal(a))
        if internal:
            raise UrlNotAllowed(
                f"the host {host} is a loopback, link-local or private address"
                f" ({', '.join(internal)}); list it in allowed_outbound_hosts to allow it",
                field=field,
            )

    def admits(self, url: str, *, field: str = "url") -> tuple[str, int | None]:
        """The checks that need no name resolution: the URL's form, the list, a literal address.

        Returns the host and port; a name's addresses are checked where it is resolved.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlNotAllowed(f"not a valid URL: {exc}", field=field) from None
        if parts.scheme not in ("http", "https"):
            raise UrlNotAllowed("only http and https URLs are allowed", field=field)
        if "@" in parts.netloc:
            raise UrlNotAllowed("a URL must not carry a user name or password", field=field)
        if "#" in url:
            raise UrlNotAllowed("a URL must not have a fragment", field=field)
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UrlNotAllowed("a URL must name a host", field=field)
        literal = _address(host)
        if literal is not None or not self.checks_addresses:
            self.check_addresses(host, [literal] if literal is not None else [], field=field)
        return host, port

    async def check(self, url: str, *, field: str = "url") -> str:
        """``url`` without a trailing slash if the service may call it; else ``UrlNotAllowed``.

        A name is resolved here too, so a registration learns at once that it is refused.
        """
        if len(url) > MAX_URL_LENGTH:
            raise UrlNotAllowed(f"a URL is at most {MAX_URL_LENGTH} characters", field=field)
        host, port = self.admits(url, field=field)
        if self.checks_addresses and _address(host) is None:
            self.check_addresses(host, await _resolve(host, port), field=field)
        return url.rstrip("/")


async def _resolve(host: str, port: int | None) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return []
    return _parsed(str(info[4][0]) for info in infos)


def _parsed(hosts: Iterable[str]) -> list[IPAddress]:
    # A scoped IPv6 address (fe80::1%eth0) is checked without its zone.
    found = []
    for host in hosts:
        address = _address(host.split("%")[0])
        if address is None:
            raise UrlNotAllowed(f"the resolver answered {host!r}, which is not an address")
        found.append(address)
    return found


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name unless the addresses it resolved to pass ``policy``.

    The connector connects to exactly the addresses returned here (and caches them for
    its DNS cache's time), so what was checked is what is connected to; TLS (SNI,
    certificate) and the ``Host`` header still use the name.
    """

    def __init__(self, policy: OutboundPolicy, dns: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = dns  # aiohttp's default, built in the event loop when first used

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            self._resolver = DefaultResolver()
        found = await self._resolver.resolve(host, port, family)
        self.policy.check_addresses(host.rstrip(".").lower(), _parsed(r["host"] for r in found))
        return found

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


def checked_session(
    policy: OutboundPolicy,
    *,
    max_connections: int = 100,
    dns: AbstractResolver | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientSession:
    """An aiohttp session whose connections resolve names through ``CheckedResolver``.

    Its pooled connections are kept alive as long as httpx keeps them (5 s). A caller
    must still check each URL (``policy.admits``) before the request, as
    ``OutboundTransport`` does; create it in the running event loop.
    """
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(policy, dns),
        limit=max_connections,
        keepalive_timeout=httpx.Limits(max_connections=max_connections).keepalive_expiry,
        ssl=_ssl_context(),
    )
    return aiohttp.ClientSession(connector=connector, headers=headers)


def _ssl_context() -> ssl.SSLContext:
    # httpx's defaults (certifi's CA bundle), as the httpx clients of the services verify.
    return httpx.create_ssl_context()


class OutboundTransport(AiohttpTransport):
    """httpx over aiohttp that calls only what ``policy`` allows, checked at each call.

    Before each request the URL is checked (form, list, literal address); a name is
    checked when the connection resolves it (``CheckedResolver``, over ``dns`` or
    aiohttp's default resolver). A refusal raises ``UrlNotAllowed`` out of
    ``httpx.AsyncClient.send``, never an ``httpx`` error.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        max_connections: int = 100,
        dns: AbstractResolver | None = None,
    ) -> None:
        def session() -> aiohttp.ClientSession:
            return checked_session(policy, max_connections=max_connections, dns=dns)

        super().__init__(client=session)
        self.policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.admits(str(request.url))
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            # httpx-aiohttp reports every aiohttp connection error as a connect timeout; one
            # refused or unreachable is a ConnectError, as with httpx's own transport.
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(
                cause, aiohttp.ServerTimeoutError
            ):
                raise httpx.ConnectError(str(exc), request=request) from cause
            raise
