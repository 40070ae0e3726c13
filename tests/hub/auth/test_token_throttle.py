"""Guessing secrets at /oauth/token is throttled per address and per client, before the KDF."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.auth import service
from tests.hub.auth.conftest import Credentials, RunningHub

ATTEMPTS = 20


def _from(address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (any 127.0.0.0/8 address is loopback)."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30.0
    )


async def _token(http: httpx.AsyncClient, hub: RunningHub, who: Credentials) -> httpx.Response:
    return await http.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(who.client_id, who.secret),
    )


async def test_wrong_secrets_are_throttled_before_the_kdf_and_other_addresses_still_work(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await hub.add_client(client_id="guessed-client")
    checks: list[int] = []
    original = service._scrypt

    def counted(*args: Any) -> bytes:  # the secret check the server runs
        checks.append(1)
        return original(*args)

    monkeypatch.setattr(service, "_scrypt", counted)
    per_address = hub.settings.token_failures_per_address
    assert per_address < ATTEMPTS < hub.settings.token_failures_per_client

    async with _from("127.0.0.1") as attacker:
        answers = [
            await _token(attacker, hub, Credentials(client.client_id, f"guess-{i}"))
            for i in range(ATTEMPTS)
        ]
        statuses = [a.status_code for a in answers]
        assert statuses == [401] * per_address + [429] * (ATTEMPTS - per_address)
        assert len(checks) == per_address  # no secret check once throttled
        throttled = answers[-1]
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["error"] == "slow_down"
        assert throttled.json()["code"] == "RATE_LIMITED"
        # From the throttled address even the right secret is refused, unchecked.
        right = await _token(attacker, hub, client)
        assert right.status_code == 429
        assert len(checks) == per_address

    async with _from("127.0.0.2") as elsewhere:
        response = await _token(elsewhere, hub, client)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


async def test_failures_for_one_client_id_are_throttled_across_addresses(
    hub: RunningHub,
) -> None:
    client = await hub.add_client(client_id="spread-guesses")
    other = await hub.add_client(client_id="bystander")
    per_client = hub.settings.token_failures_per_client
    per_address = hub.settings.token_failures_per_address
    statuses = []
    for i in range(per_client + 1):
        address = f"127.0.1.{1 + i // per_address}"  # never over the per-address limit
        async with _from(address) as http:
            response = await _token(http, hub, Credentials(client.client_id, f"guess-{i}"))
        statuses.append(response.status_code)
    assert statuses == [401] * per_client + [429]
    async with _from("127.0.2.1") as http:
        assert (await _token(http, hub, client)).status_code == 429  # the client is throttled
        assert (await _token(http, hub, other)).status_code == 200  # another client is not
