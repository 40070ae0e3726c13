"""An open ``flagEvents`` subscription ends (close code 4401) when its token stops being good."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from hub.auth import HubAuth, create_auth, service
from hub.graphql import TOKEN_ENDED_CLOSE_CODE
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.hub.flags.conftest import DEPT_GAS, FlagsHub, Subscriber

StartHub = Callable[..., Awaitable[FlagsHub]]


@dataclass
class Department:
    client_id: str
    secret: str
    token: str


@pytest.fixture
async def hub_db(start_flags_hub: StartHub) -> AsyncIterator[tuple[FlagsHub, Database]]:
    hub = await start_flags_hub()
    db = Database(hub.hub.db_url)
    try:
        yield hub, db
    finally:
        await db.dispose()


async def _department(hub: FlagsHub, db: Database, client_id: str) -> Department:
    async with db.transaction() as session:
        client, secret = await service.create_client(
            session,
            org=DEPT_GAS,
            org_kind=OrgKind.DEPARTMENT,
            district="110105",
            scopes="risk:verify",
            client_id=client_id,
        )
    response = await hub.http.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
    )
    assert response.status_code == 200, response.text
    return Department(client.client_id, secret, response.json()["access_token"])


async def _subscribed(hub: FlagsHub, token: str) -> Subscriber:
    subscriber = await Subscriber.open(hub.ws_url, token)
    assert (await subscriber.ack())["type"] == "connection_ack"
    await subscriber.subscribe(after=0)
    await subscriber.nothing_more(wait_s=0.5)  # subscribed, and still open
    return subscriber


async def _closed_within(subscriber: Subscriber, bound_s: float) -> tuple[int, str, float]:
    """The close code and reason the hub sent, and how long it took."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:  # no flag is raised: no event comes first
        await subscriber.message(timeout_s=bound_s)
    elapsed = time.monotonic() - started
    received = closed.value.rcvd
    assert received is not None, "the hub did not close the socket with a code"
    return received.code, received.reason, elapsed


async def test_a_subscription_is_closed_when_its_token_is_revoked(
    hub_db: tuple[FlagsHub, Database],
) -> None:
    hub, db = hub_db
    department = await _department(hub, db, "sub-revoked")
    bystander = await _department(hub, db, "sub-bystander")
    subscriber = await _subscribed(hub, department.token)
    other = await _subscribed(hub, bystander.token)
    try:
        response = await hub.http.post(
            f"{hub.url}/oauth/revoke",
            data={"token": department.token},
            auth=(department.client_id, department.secret),
        )
        assert response.status_code == 200
        code, reason, elapsed = await _closed_within(subscriber, bound_s=5)
        print(f"subscription closed {elapsed * 1000:.0f} ms after revocation")
        assert (code, reason) == (TOKEN_ENDED_CLOSE_CODE, "TOKEN_REVOKED")
        assert code == 4401
        assert elapsed < 1.0  # the replica that revoked wakes its sockets at once
        await other.nothing_more(wait_s=1.5)  # another client's subscription stays open
    finally:
        await subscriber.close()
        await other.close()


async def test_a_subscription_is_closed_when_its_client_is_disabled(
    hub_db: tuple[FlagsHub, Database],
) -> None:
    hub, db = hub_db
    department = await _department(hub, db, "sub-disabled")
    subscriber = await _subscribed(hub, department.token)
    try:
        async with db.transaction() as session:  # what `linli clients disable` does
            await service.disable_client(session, department.client_id)
        code, reason, elapsed = await _closed_within(subscriber, bound_s=5)
        print(f"subscription closed {elapsed * 1000:.0f} ms after the client was disabled")
        assert (code, reason) == (4401, "TOKEN_CLIENT_DISABLED")
        # Reloaded from the database every revocation_refresh_s (1 s), then checked at once.
        assert elapsed < 2 * hub.hub.settings.revocation_refresh_s + 1.0
    finally:
        await subscriber.close()


async def test_a_subscription_is_closed_when_its_token_expires(
    hub_db: tuple[FlagsHub, Database],
) -> None:
    hub, db = hub_db
    auth: HubAuth = create_auth(hub.hub.settings, db)
    await auth.keys.load()
    try:
        # The hub's own key, a lifetime shorter than any the token endpoint gives.
        issued = auth.issuer.issue(
            client_id="sub-expiring",
            org=DEPT_GAS,
            org_kind=OrgKind.DEPARTMENT,
            district="110105",
            scopes=["risk:verify"],
            ttl_s=3,
        )
        subscriber = await _subscribed(hub, issued.access_token)
        try:
            code, reason, _ = await _closed_within(subscriber, bound_s=10)
            closed_at = time.time()
            expires_at = issued.claims["exp"]
            print(f"subscription closed {closed_at - expires_at:+.2f} s from the token's exp")
            assert (code, reason) == (4401, "TOKEN_EXPIRED")
            assert expires_at - 0.1 <= closed_at < expires_at + 1.5
        finally:
            await subscriber.close()
    finally:
        await auth.jwks_http.aclose()


async def test_a_token_refused_before_connecting_is_refused_at_connection_init(
    hub_db: tuple[FlagsHub, Database],
) -> None:
    hub, db = hub_db
    department = await _department(hub, db, "sub-refused-early")
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{hub.url}/oauth/revoke",
            data={"token": department.token},
            auth=(department.client_id, department.secret),
        )
    assert response.status_code == 200
    subscriber = await Subscriber.open(hub.ws_url, department.token)
    try:
        with pytest.raises(ConnectionClosed) as refused:
            await subscriber.ack()
    finally:
        await subscriber.close()
    assert refused.value.rcvd is not None
    assert refused.value.rcvd.code == 4403
