"""The one check of URLs a service is asked to call: scheme, user-info, fragment, hosts."""

from __future__ import annotations

import pytest

from hub.sealed import new_key
from hub.settings import HubSettings
from schema.runtime.outbound import URL_NOT_ALLOWED, OutboundPolicy, UrlNotAllowed
from schema.runtime.settings import Environment

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
