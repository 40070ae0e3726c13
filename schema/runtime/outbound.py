"""Which URLs a service may call on someone's say-so (sources, webhooks): one check for all.

A URL an admin or a department registers is later called by the service, and
what comes back (status codes, connection errors) is shown to whoever
registered it; unchecked, that is a port scanner of the service's own network.
So: http(s) only, no user-info, no fragment; hosts in ``allowed_outbound_hosts``
when that list is set; and in production no loopback, link-local or private
address (literal, or what a name resolves to at registration) unless listed.
Development allows those: the demo and the tests run on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from schema.errors import InvalidInput

__all__ = ["URL_NOT_ALLOWED", "OutboundPolicy", "UrlNotAllowed"]

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
    """Checks a URL before it is stored; ``allowed_hosts`` are names, ``*.suffix`` or CIDR."""

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

    async def check(self, url: str, *, field: str = "url") -> str:
        """``url`` without a trailing slash if the service may call it; else ``UrlNotAllowed``."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlNotAllowed(f"a URL is at most {MAX_URL_LENGTH} characters", field=field)
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
        if self._listed(host, literal):
            return url.rstrip("/")
        if self.allowed_hosts:
            raise UrlNotAllowed(f"the host {host} is not in allowed_outbound_hosts", field=field)
        if not self.allow_internal:
            addresses = [literal] if literal is not None else await _resolve(host, port)
            if not addresses:
                raise UrlNotAllowed(f"the host {host} does not resolve", field=field)
            internal = sorted(str(a) for a in addresses if _internal(a))
            if internal:
                raise UrlNotAllowed(
                    f"the host {host} is a loopback, link-local or private address"
                    f" ({', '.join(internal)}); list it in allowed_outbound_hosts to allow it",
                    field=field,
                )
        return url.rstrip("/")


async def _resolve(host: str, port: int | None) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return []
    found = (_address(str(info[4][0]).split("%")[0]) for info in infos)
    return [a for a in found if a is not None]
