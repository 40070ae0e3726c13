"""The one check of URLs a service is asked to call: scheme, user-info, fragment, hosts."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.sealed import new_key
from hub.settings import HubSettings
from schema.runtime.outbound import (
    URL_NOT_ALLOWED,
    OutboundPolicy,
    OutboundTransport,
    UrlNotAllowed,
)
from schema.runtime.settings import Environment
from tests.conftest import free_port

PRODUCTION = OutboundPolicy(allow_internal=False)
DEVELOPMENT = OutboundPolicy(allow_internal=True)


async def refused(policy: OutboundPolicy, url: str) -> str:
    with pytest.raises(UrlNotAllowed) as caught:
        await policy.check(url)
    assert caught.value.extensions["code"] == URL_NOT_ALLOWED
    assert caught.value.extensions["field"] == "url"
    return caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://user:pass@example.org/",
        "http://user@example.org/",
        "https://example.org/#frag",
        "http:///nohost",
        "http://example.org:99999/",
        "https://example.org/" + "x" * 2000,
    ],
)
@pytest.mark.parametrize("policy", [PRODUCTION, DEVELOPMENT], ids=["production", "development"])
async def test_malformed_urls_are_refused_everywhere(policy: OutboundPolicy, url: str) -> None:
    await refused(policy, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001",
        "http://127.1.2.3/",
        "http://localhost:8001",  # a name: its resolved addresses are checked
        "http://[::1]:8001/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0:22/",
        "http://100.64.0.1/",
    ],
)
async def test_production_refuses_internal_addresses(url: str) -> None:
    message = await refused(PRODUCTION, url)
    assert "allowed_outbound_hosts" in message


async def test_production_allows_public_addresses_and_listed_internal_ones() -> None:
    assert (
        await PRODUCTION.check("https://93.184.216.34/graphql/") == "https://93.184.216.34/graphql"
    )
    listed = OutboundPolicy(["10.0.0.0/8", "node.internal"], allow_internal=False)
    assert await listed.check("http://10.1.2.3:8001") == "http://10.1.2.3:8001"
    assert await listed.check("http://node.internal:8001/") == "http://node.internal:8001"
    await refused(listed, "http://192.168.1.1/")  # a list is exhaustive


async def test_development_allows_loopback() -> None:
    assert await DEVELOPMENT.check("http://127.0.0.1:8001/") == "http://127.0.0.1:8001"
    assert await DEVELOPMENT.check("http://localhost:8001") == "http://localhost:8001"


async def test_an_allow_list_limits_hosts_in_development_too() -> None:
    policy = OutboundPolicy(["*.example.org", "example.org"], allow_internal=True)
    assert await policy.check("https://hooks.example.org/x") == "https://hooks.example.org/x"
    assert await policy.check("https://EXAMPLE.org/x") == "https://EXAMPLE.org/x"
    assert "not in allowed_outbound_hosts" in await refused(policy, "http://127.0.0.1:8001")
    await refused(policy, "https://example.org.evil.net/")
    await refused(policy, "https://evilexample.org/")


def test_the_hub_setting_builds_the_policy() -> None:
    production = HubSettings(
        environment=Environment.PRODUCTION,
        allowed_outbound_hosts=["a.example"],
        secrets_key=new_key(),
    ).outbound_policy()
    assert (production.allow_internal, production.allowed_hosts) == (False, ["a.example"])
    assert HubSettings().outbound_policy().allow_internal is True


# --- at call time -------------------------------------------------------------------


class StaticDns(AbstractResolver):
    """A DNS server we cannot run here: names answer the addresses the test sets, as they change."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host} does not resolve")
        return [
            ResolveResult(
                hostname=host, host=self.answers[host], port=port, family=socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST,
            )
        ]  # fmt: skip

    async def close(self) -> None:
        pass


@dataclass
class Endpoint:
    """A real HTTP endpoint on 127.0.0.1 that records the Host header of each request."""

    hosts: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> JSONResponse:
            self.hosts.append(request.headers["host"])
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/", record, methods=["GET", "POST"])])


@pytest.fixture
def endpoint(serve: Any) -> tuple[Endpoint, int]:
    running = Endpoint()
    return running, serve(running.app()).port


async def call(policy: OutboundPolicy, url: str, dns: AbstractResolver | None = None) -> int:
    async with httpx.AsyncClient(transport=OutboundTransport(policy, dns=dns)) as http:
        return (await http.get(url)).status_code


async def refused_call(
    policy: OutboundPolicy, url: str, dns: AbstractResolver | None = None
) -> str:
    with pytest.raises(UrlNotAllowed) as caught:
        await call(policy, url, dns)
    assert caught.value.extensions["code"] == URL_NOT_ALLOWED
    return caught.value.message


async def test_a_name_that_resolves_to_loopback_is_refused_when_called_in_production(
    endpoint: tuple[Endpoint, int],
) -> None:
    received, port = endpoint
    # No check at registration here: only the call stands between the name and 127.0.0.1.
    message = await refused_call(PRODUCTION, f"http://localhost:{port}/")
    assert message.startswith("the host localhost is a loopback, link-local or private address")
    assert "127.0.0.1" in message
    assert await call(DEVELOPMENT, f"http://localhost:{port}/") == 200
    assert received.hosts == [f"localhost:{port}"]  # only the development call arrived


async def test_the_connection_goes_to_the_address_that_was_checked(
    endpoint: tuple[Endpoint, int],
) -> None:
    received, port = endpoint
    dns = StaticDns({"node.example.test": "127.0.0.1"})
    url = f"http://node.example.test:{port}/"
    # Rebound: the name now answers a loopback address, and the call is refused.
    assert "(127.0.0.1)" in await refused_call(PRODUCTION, url, dns)
    assert received.hosts == []
    # Where loopback is allowed, the call reaches exactly the address the resolver answered
    # (no second lookup of its own), and the request still names the host.
    assert await call(DEVELOPMENT, url, dns) == 200
    assert received.hosts == [f"node.example.test:{port}"]
    assert dns.asked == ["node.example.test", "node.example.test"]


async def test_what_needs_no_resolution_is_checked_at_every_call(
    endpoint: tuple[Endpoint, int],
) -> None:
    received, port = endpoint
    assert "allowed_outbound_hosts" in await refused_call(PRODUCTION, f"http://127.0.0.1:{port}/")
    listed = OutboundPolicy(["hooks.example.org"], allow_internal=True)  # the list changed
    assert "not in allowed_outbound_hosts" in await refused_call(
        listed, f"http://127.0.0.1:{port}/"
    )
    assert "user name" in await refused_call(DEVELOPMENT, f"http://u:p@127.0.0.1:{port}/")
    assert received.hosts == []


async def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        await call(DEVELOPMENT, f"http://127.0.0.1:{free_port()}/")
