"""Tokens the hub mints to call a source on a caller's behalf (RFC 8693 style, no passthrough)."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from hub.auth import TokenIssuer, mint_for_source
from policies.caller import Caller
from policies.tokens import (
    ActorChainTooLong,
    FederationLoop,
    TokenAudienceInvalid,
    actor_claim,
)
from schema.enums import OrgKind
from tests.hub.auth.conftest import COMMUNITY, DISTRICT, HUB_ID, NODE_A, NODE_B, RunningHub


def _caller(**changes: Any) -> Caller:
    values: dict[str, Any] = {
        "org": COMMUNITY,
        "org_kind": OrgKind.COMMUNITY,
        "scopes": frozenset({"resources:read", "shelters:read"}),
        "client_id": "yonganli-staff",
        "subject": "yonganli-staff",
        "district": DISTRICT,
        "token_id": "original-jti",
    }
    values.update(changes)
    return Caller(**values)


def _claims(hub: RunningHub, token: str, audience: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(hub.jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=audience, issuer=hub.settings.issuer
    )
    return claims


async def test_source_token_names_caller_and_hub_as_actor(hub: RunningHub) -> None:
    caller = _caller()
    token = await mint_for_source(hub.auth.issuer, caller, NODE_A)

    seen = await hub.verifier(NODE_A).verify(token)
    assert seen.org == COMMUNITY
    assert seen.org_kind is OrgKind.COMMUNITY
    assert seen.scopes == caller.scopes
    assert seen.client_id == caller.client_id
    assert seen.subject == caller.subject
    assert seen.district == DISTRICT
    assert seen.actor == HUB_ID
    assert seen.token_id != caller.token_id  # a new token, not the caller's

    claims = await asyncio.to_thread(_claims, hub, token, NODE_A)
    assert claims["aud"] == NODE_A
    assert claims["act"] == {"sub": HUB_ID}
    assert claims["exp"] - claims["iat"] == 60
    assert claims["scope"] == "resources:read shelters:read"


async def test_source_token_is_refused_by_another_source_and_by_the_hub(hub: RunningHub) -> None:
    token = await hub.auth.issuer.mint_for_source(_caller(), NODE_A)
    with pytest.raises(TokenAudienceInvalid) as refused:
        await hub.verifier(NODE_B).verify(token)
    assert refused.value.extensions["reason"] == "TOKEN_AUDIENCE_INVALID"
    with pytest.raises(TokenAudienceInvalid):
        await hub.auth.authenticator.authenticate(f"Bearer {token}")


async def test_source_token_is_signed_with_the_key_the_hub_serves(hub: RunningHub) -> None:
    # The tests' issuer and the running hub share keys only through the database.
    served = (await hub.http.get(hub.jwks_url)).json()["keys"]
    assert hub.auth.keys.signing_key.kid in {k["kid"] for k in served}


async def test_prior_actor_nests_and_ttl_is_capped(hub: RunningHub) -> None:
    token = await hub.auth.issuer.mint_for_source(_caller(actor="hub-110000"), NODE_A, ttl_s=10_000)
    claims = await asyncio.to_thread(_claims, hub, token, NODE_A)
    assert claims["act"] == {"sub": HUB_ID, "act": {"sub": "hub-110000"}}
    assert claims["exp"] - claims["iat"] == hub.settings.access_token_ttl_s


async def test_scopes_can_be_narrowed_never_widened(hub: RunningHub) -> None:
    issuer: TokenIssuer = hub.auth.issuer
    narrow = await issuer.mint_for_source(_caller(), NODE_A, scopes={"shelters:read"})
    assert (await hub.verifier(NODE_A).verify(narrow)).scopes == {"shelters:read"}
    with pytest.raises(ValueError, match="pii:read"):
        await issuer.mint_for_source(_caller(), NODE_A, scopes={"pii:read"})


async def test_source_token_needs_a_source_audience(hub: RunningHub) -> None:
    with pytest.raises(ValueError, match="audience"):
        await hub.auth.issuer.mint_for_source(_caller(), HUB_ID)
    with pytest.raises(ValueError, match="audience"):
        await hub.auth.issuer.mint_for_source(_caller(), "")


async def test_the_whole_chain_of_actors_nests(hub: RunningHub) -> None:
    caller = _caller(actor="hub-110100", actors=("hub-110100", "hub-110000"))
    token = await hub.auth.issuer.mint_for_source(caller, NODE_A)
    claims = await asyncio.to_thread(_claims, hub, token, NODE_A)
    assert claims["act"] == {
        "sub": HUB_ID,
        "act": {"sub": "hub-110100", "act": {"sub": "hub-110000"}},
    }
    seen = await hub.verifier(NODE_A).verify(token)
    assert seen.actors == (HUB_ID, "hub-110100", "hub-110000")
    assert seen.actor == HUB_ID


async def test_a_chain_longer_than_the_hub_mints_is_refused(hub: RunningHub) -> None:
    assert hub.settings.max_actor_chain == 3
    caller = _caller(actor="a", actors=("a", "b", "c"))  # with this hub: four
    with pytest.raises(ActorChainTooLong) as refused:
        await hub.auth.issuer.mint_for_source(caller, NODE_A)
    assert refused.value.extensions["reason"] == "ACTOR_CHAIN_TOO_LONG"


def _own(hub: RunningHub, actors: list[str]) -> str:
    """A token of this hub for itself, naming ``actors``."""
    return hub.auth.issuer.issue(
        client_id="city-client", org="110100400001", org_kind=OrgKind.DEPARTMENT,
        district="110100", scopes=["resources:read"], actor=actor_claim(actors),
    ).access_token  # fmt: skip


async def test_the_hub_refuses_a_token_it_already_acted_on_or_with_too_many_actors(
    hub: RunningHub,
) -> None:
    authenticate = hub.auth.authenticator.authenticate
    accepted = await authenticate(f"Bearer {_own(hub, ['hub-110100', 'hub-110000'])}")
    assert accepted.actors == ("hub-110100", "hub-110000")
    with pytest.raises(FederationLoop) as loop:
        await authenticate(f"Bearer {_own(hub, ['hub-110100', HUB_ID])}")
    assert loop.value.extensions["reason"] == "FEDERATION_LOOP"
    with pytest.raises(ActorChainTooLong):
        await authenticate(f"Bearer {_own(hub, ['a', 'b', 'c', 'd'])}")
