"""Introspection (RFC 7662), revocation (RFC 7009) and the hub's own caller check."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from hub.auth import RevokedToken, TokenClientDisabled, TokenRevoked, service
from policies.tokens import TokenKidUnknown, TokenMissing, TokenSignatureInvalid
from schema.enums import OrgKind
from tests.hub.auth.conftest import (
    COMMUNITY,
    DISTRICT,
    HUB_ID,
    NODE_A,
    Credentials,
    RunningHub,
    refused_within,
)


async def _introspect(hub: RunningHub, who: Credentials, token: str) -> httpx.Response:
    return await hub.http.post(
        f"{hub.url}/oauth/introspect",
        data={"token": token, "token_type_hint": "access_token"},
        auth=(who.client_id, who.secret),
    )


async def _revoke(hub: RunningHub, who: Credentials, token: str) -> httpx.Response:
    return await hub.http.post(
        f"{hub.url}/oauth/revoke", data={"token": token}, auth=(who.client_id, who.secret)
    )


async def test_introspection_of_a_live_token(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff, scope="resources:read")
    response = await _introspect(hub, hub.staff, token)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == hub.staff.client_id
    assert body["scope"] == "resources:read"
    assert body["aud"] == HUB_ID
    assert body["iss"] == hub.settings.issuer
    assert body["org"] == COMMUNITY
    assert body["org_kind"] == "community"
    assert body["district"] == DISTRICT
    assert body["token_type"] == "Bearer"
    assert body["exp"] > time.time()


async def test_introspection_needs_client_authentication(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    response = await hub.http.post(f"{hub.url}/oauth/introspect", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    wrong = await _introspect(hub, Credentials(hub.staff.client_id, "wrong"), token)
    assert wrong.status_code == 401


async def test_another_client_sees_inactive_but_an_admin_sees_active(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    stranger = await hub.add_client(client_id="stranger-client")
    assert (await _introspect(hub, stranger, token)).json() == {"active": False}
    assert (await _introspect(hub, hub.department, token)).json()["active"] is True


async def test_expired_and_foreign_tokens_are_inactive(hub: RunningHub) -> None:
    keys = hub.auth.keys
    expired = hub.auth.issuer.issue(
        client_id=hub.staff.client_id,
        org=COMMUNITY,
        org_kind=OrgKind.COMMUNITY,
        district=DISTRICT,
        scopes={"resources:read"},
        ttl_s=-5,
    ).access_token
    assert (await _introspect(hub, hub.staff, expired)).json() == {"active": False}

    # Same claims and the hub's kid, but signed by someone else's key.
    forged_key = ECKey.generate_key("P-256", private=True)
    live = await hub.access_token(hub.staff)
    claims = (await _introspect(hub, hub.staff, live)).json()
    claims.pop("active")
    claims.pop("token_type")
    header = {"typ": "at+jwt", "alg": "ES256", "kid": keys.signing_key.kid}
    forged = jwt.encode(header, claims, forged_key, algorithms=["ES256"])
    assert (await _introspect(hub, hub.staff, forged)).json() == {"active": False}
    with pytest.raises(TokenSignatureInvalid):
        await hub.auth.authenticator.authenticate(f"Bearer {forged}")

    other_kid = jwt.encode({**header, "kid": "someone-else"}, claims, forged_key)
    assert (await _introspect(hub, hub.staff, other_kid)).json() == {"active": False}
    with pytest.raises(TokenKidUnknown):
        await hub.auth.authenticator.authenticate(f"Bearer {other_kid}")
    assert (await _introspect(hub, hub.staff, "not-a-jwt")).json() == {"active": False}


async def test_revocation_makes_the_token_inactive_everywhere_at_the_hub(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    caller = await hub.auth.authenticator.authenticate(f"Bearer {token}")
    assert caller.client_id == hub.staff.client_id

    response = await _revoke(hub, hub.staff, token)
    assert response.status_code == 200
    assert response.json() == {}

    assert (await _introspect(hub, hub.staff, token)).json() == {"active": False}
    # The tests' HubAuth is another replica: it reloads within twice revocation_refresh_s.
    refused = await refused_within(hub.auth, token, bound_s=1.0)
    assert isinstance(refused, TokenRevoked)
    assert refused.extensions["reason"] == "TOKEN_REVOKED"
    # Revoking again, or revoking garbage, is not an error (RFC 7009 §2.2).
    assert (await _revoke(hub, hub.staff, token)).status_code == 200
    assert (await _revoke(hub, hub.staff, "garbage")).status_code == 200
    # Other tokens of the same client still work.
    other = await hub.access_token(hub.staff)
    assert (await _introspect(hub, hub.staff, other)).json()["active"] is True
    assert (await hub.auth.authenticator.authenticate(f"Bearer {other}")).token_id


async def test_revocation_is_stored_until_the_token_expires(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    assert (await _revoke(hub, hub.staff, token)).status_code == 200
    claims = json.loads(jws.extract_compact(token.encode()).payload or b"")
    async with hub.db.sessions() as session:
        row = await session.get(RevokedToken, claims["jti"])
    assert row is not None
    assert row.client_id == hub.staff.client_id
    assert row.expires_at == datetime.fromtimestamp(claims["exp"], UTC)


async def test_a_client_cannot_revoke_anothers_token(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    stranger = await hub.add_client(client_id="would-be-revoker")
    response = await _revoke(hub, stranger, token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await _introspect(hub, hub.staff, token)).json()["active"] is True


async def test_an_admin_can_revoke_a_source_token(hub: RunningHub) -> None:
    caller = await hub.auth.authenticator.authenticate(
        f"Bearer {await hub.access_token(hub.staff)}"
    )
    minted = await hub.auth.issuer.mint_for_source(caller, NODE_A)
    assert (await _introspect(hub, hub.department, minted)).json()["act"] == {"sub": HUB_ID}
    assert (await _revoke(hub, hub.department, minted)).status_code == 200
    assert (await _introspect(hub, hub.department, minted)).json() == {"active": False}


async def test_tokens_of_a_disabled_client_are_refused(hub: RunningHub) -> None:
    who = await hub.add_client(client_id="soon-disabled")
    token = await hub.access_token(who)
    assert (await hub.auth.authenticator.authenticate(f"Bearer {token}")).client_id == (
        who.client_id
    )
    assert (await _introspect(hub, hub.department, token)).json()["active"] is True
    async with hub.db.transaction() as session:
        await service.disable_client(session, who.client_id)
    refused = await refused_within(hub.auth, token, bound_s=1.0)
    assert isinstance(refused, TokenClientDisabled)
    assert refused.extensions["reason"] == "TOKEN_CLIENT_DISABLED"
    assert (await _introspect(hub, hub.department, token)).json() == {"active": False}


async def test_hub_authenticator_needs_a_bearer_token(hub: RunningHub) -> None:
    with pytest.raises(TokenMissing):
        await hub.auth.authenticator.authenticate(None)
    with pytest.raises(TokenMissing):
        await hub.auth.authenticator.authenticate(f"Basic {hub.staff.secret}")


async def test_token_type_hint_is_ignored(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    for hint in ("refresh_token", "something_else"):
        response = await hub.http.post(
            f"{hub.url}/oauth/introspect",
            data={"token": token, "token_type_hint": hint},
            auth=(hub.staff.client_id, hub.staff.secret),
        )
        assert response.status_code == 200
        assert response.json()["active"] is True


async def test_missing_token_is_invalid_request(hub: RunningHub) -> None:
    for path in ("/oauth/introspect", "/oauth/revoke"):
        response = await hub.http.post(
            f"{hub.url}{path}", data={"x": "y"}, auth=(hub.staff.client_id, hub.staff.secret)
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
