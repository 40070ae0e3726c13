"""A district hub follows the city's revocation list: real city, district hubs and nodes.

The city's authorization server revokes a token (or disables a client); within the
bound nodes keep (5 s: the city's refresh, one poll, one request) the district
refuses it with the stable reason and closes a subscription opened with it. While
the city is down the district keeps its last list and keeps answering; when the
city comes back the district catches up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from websockets.exceptions import ConnectionClosed

from hub.app import create_app as create_hub
from hub.auth import service
from hub.graphql import TOKEN_ENDED_CLOSE_CODE
from policies.revocations import REVOCATIONS_PATH
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import BACKENDS, GraphQLClient, ServerThread
from tests.hub.federation.hierarchy import CITY, DISTRICT_A, Hierarchy, hierarchy, hub_id
from tests.hub.flags.conftest import Subscriber

#: The stated bound (README, "Revocation"): refresh 1 s + poll 2 s + one request.
BOUND_S = 5.0
RESOURCES = "{ resources(first: 1) { edges { node { id } } } }"
SCOPES = "resources:read risk:read"


@pytest.fixture(params=BACKENDS)
async def city(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hierarchy]:
    async with hierarchy(tmp_path, request.param) as built:
        yield built


class CityClient:
    """A client of the city's authorization server, with tokens for district A's hub."""

    def __init__(self, built: Hierarchy, client_id: str, secret: str) -> None:
        self.city = built.hubs[CITY]
        self.district = built.hubs[DISTRICT_A]
        self.client_id = client_id
        self.secret = secret
        self.clients: list[GraphQLClient] = []

    @classmethod
    async def create(cls, built: Hierarchy, org: str) -> CityClient:
        db = Database(built.hubs[CITY].db_url)
        try:
            async with db.transaction() as session:
                client, secret = await service.create_client(
                    session, org=org, org_kind=OrgKind.DEPARTMENT, district=CITY, scopes=SCOPES
                )
        finally:
            await db.dispose()
        return cls(built, client.client_id, secret)

    async def token(self) -> str:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{self.city.url}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": SCOPES,
                    "resource": hub_id(DISTRICT_A),
                },
                auth=(self.client_id, self.secret),
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    async def at_district(self, token: str | None = None) -> GraphQLClient:
        """A GraphQL client of district A with a city token, checked to read there."""
        client = GraphQLClient(self.district.url, token or await self.token())
        self.clients.append(client)
        assert "resources" in await client.data(RESOURCES)
        return client

    async def revoke(self, token: str) -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{self.city.url}/oauth/revoke",
                data={"token": token},
                auth=(self.client_id, self.secret),
            )
        assert response.status_code == 200

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def bearer(client: GraphQLClient) -> str:
    return str(client.http.headers["Authorization"]).removeprefix("Bearer ")


def claims(client: GraphQLClient) -> dict[str, Any]:
    """The claims of the client's token (read, not verified: the test made it)."""
    payload: dict[str, Any] = json.loads(
        jws.extract_compact(bearer(client).encode()).payload or b""
    )
    return payload


async def refused_within(client: GraphQLClient, bound_s: float) -> tuple[int, str, float]:
    """HTTP status and reason of the first refusal, and how long it took; fails past the bound."""
    started = time.monotonic()
    while True:
        response = await client.http.post("/graphql", json={"query": RESOURCES})
        elapsed = time.monotonic() - started
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            return response.status_code, body["errors"][0]["extensions"]["reason"], elapsed
        assert elapsed < bound_s, f"still served after {elapsed:.2f} s"
        await asyncio.sleep(0.05)


async def subscribed(url: str, token: str) -> Subscriber:
    subscriber = await Subscriber.open(url.replace("http", "ws", 1) + "/graphql", token)
    assert (await subscriber.ack())["type"] == "connection_ack"
    await subscriber.subscribe(after=0)
    await subscriber.nothing_more(wait_s=0.5)  # subscribed, and still open
    return subscriber


async def closed_within(subscriber: Subscriber, bound_s: float) -> tuple[int, str, float]:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        await subscriber.message(timeout_s=bound_s)
    received = closed.value.rcvd
    assert received is not None, "the hub did not close the socket with a code"
    return received.code, received.reason, time.monotonic() - started


async def test_a_token_the_city_revokes_is_refused_at_the_district_within_the_bound(
    city: Hierarchy,
) -> None:
    department = await CityClient.create(city, "110100400011")
    try:
        revoked = await department.at_district()
        other = await department.at_district()  # another token of the same city client
        subscriber = await subscribed(department.district.url, bearer(revoked))
        bystander = await subscribed(department.district.url, bearer(other))
        try:
            await department.revoke(bearer(revoked))
            status, reason, elapsed = await refused_within(revoked, BOUND_S)
            print(f"the city's revocation reached the district in {elapsed * 1000:.0f} ms")
            assert (status, reason) == (401, "TOKEN_REVOKED")
            # The subscription opened with it is closed, as for the district's own tokens.
            code, why, _ = await closed_within(subscriber, BOUND_S)
            assert (code, why) == (TOKEN_ENDED_CLOSE_CODE, "TOKEN_REVOKED")
            # Only that token: another of the same client still reads and stays subscribed.
            assert "resources" in await other.data(RESOURCES)
            await bystander.nothing_more(wait_s=1.5)
        finally:
            await subscriber.close()
            await bystander.close()

        # A city client disabled at the city (its database only, like `linli clients
        # disable`): every token of it is refused at the district too.
        db = Database(department.city.db_url)
        try:
            async with db.transaction() as session:
                await service.disable_client(session, department.client_id)
        finally:
            await db.dispose()
        status, reason, elapsed = await refused_within(other, BOUND_S)
        print(f"the city's client disable reached the district in {elapsed * 1000:.0f} ms")
        assert (status, reason) == (401, "TOKEN_CLIENT_DISABLED")
        # The district's own callers are not touched by the city's list.
        local = await city.department(DISTRICT_A)
        assert "resources" in await local.data(RESOURCES)
    finally:
        await department.aclose()


async def test_the_district_keeps_working_while_the_city_is_down_and_catches_up(
    city: Hierarchy,
) -> None:
    department = await CityClient.create(city, "110100400012")
    city_hub = city.hubs[CITY]
    try:
        early = await department.at_district()
        kept = await department.at_district()
        late = await department.at_district()
        await department.revoke(bearer(early))
        assert (await refused_within(early, BOUND_S))[:2] == (401, "TOKEN_REVOKED")

        await asyncio.to_thread(city_hub.server.stop)
        async with httpx.AsyncClient(timeout=30.0) as http:
            with pytest.raises(httpx.ConnectError):  # the city's list is out of reach
                await http.get(f"{city_hub.url}{REVOCATIONS_PATH}")
        # The city's authorization server revokes `late` while the district cannot see
        # its list (the city database only; the city publishes it when it is back).
        db = Database(city_hub.db_url)
        try:
            async with db.transaction() as session:
                await service.record_revocation(
                    session,
                    jti=claims(late)["jti"],
                    client_id=department.client_id,
                    expires_at=datetime.fromtimestamp(claims(late)["exp"], UTC),
                )
        finally:
            await db.dispose()
        # Several failed polls later the district still answers the city's good tokens
        # and still refuses the one it knew was revoked: the last list is kept.
        await asyncio.sleep(2 * city.hubs[DISTRICT_A].settings.trusted_revocation_poll_s + 1)
        assert "resources" in await kept.data(RESOURCES)
        assert "resources" in await late.data(RESOURCES)  # not known here yet
        response = await early.http.post("/graphql", json={"query": RESOURCES})
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["reason"] == "TOKEN_REVOKED"

        # The city comes back on the same address: the district catches up.
        server = ServerThread(create_hub(city_hub.settings), city_hub.server.port).start()
        city_hub.server = server
        status, reason, elapsed = await refused_within(late, 30.0)
        print(f"the district caught up {elapsed * 1000:.0f} ms after the city came back")
        assert (status, reason) == (401, "TOKEN_REVOKED")
        assert "resources" in await kept.data(RESOURCES)
    finally:
        await department.aclose()
