"""The token endpoint over real HTTP: an OAuth client library gets tokens that others verify."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import jwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from hub.auth import SCOPES, service
from policies.caller import Caller
from policies.tokens import TokenAudienceInvalid
from schema.enums import OrgKind
from tests.hub.auth.conftest import (
    COMMUNITY,
    DISTRICT,
    HUB_ID,
    NODE_A,
    SOURCE_IDS,
    TTL_S,
    Credentials,
    RunningHub,
)


def _header(token: str) -> dict[str, Any]:
    encoded = token.split(".")[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return header


def _pyjwt_claims(hub: RunningHub, token: str, audience: str) -> dict[str, Any]:
    """Independent validation: pyjwt with the hub's JWKS, exact issuer and audience."""
    signing_key = jwt.PyJWKClient(hub.jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=audience,
        issuer=hub.settings.issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    return claims


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_oauth_client_gets_a_token_that_pyjwt_validates(hub: RunningHub, method: str) -> None:
    async with AsyncOAuth2Client(
        hub.staff.client_id,
        hub.staff.secret,
        token_endpoint_auth_method=method,
        scope="resources:read alerts:read",
    ) as client:
        token = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == TTL_S
    assert token["scope"] == "resources:read alerts:read"
    assert "refresh_token" not in token
    access = token["access_token"]

    header = _header(access)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    claims = await asyncio.to_thread(_pyjwt_claims, hub, access, HUB_ID)
    assert claims["iss"] == hub.settings.issuer
    assert claims["aud"] == HUB_ID
    assert claims["sub"] == claims["client_id"] == hub.staff.client_id
    assert claims["scope"] == "resources:read alerts:read"
    assert claims["org"] == COMMUNITY
    assert claims["org_kind"] == "community"
    assert claims["district"] == DISTRICT
    assert claims["exp"] - claims["iat"] == TTL_S
    assert claims["nbf"] == claims["iat"]
    assert "act" not in claims
    with pytest.raises(jwt.InvalidAudienceError):
        await asyncio.to_thread(_pyjwt_claims, hub, access, NODE_A)


async def test_token_response_is_not_cached(hub: RunningHub) -> None:
    response = await hub.token(hub.staff)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")


async def test_no_scope_requested_gets_all_the_client_may_have(hub: RunningHub) -> None:
    body = (await hub.token(hub.staff)).json()
    assert body["scope"] == "resources:read alerts:read records:write"


async def test_the_node_verifier_accepts_the_token_and_names_the_caller(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff, scope="resources:read", resource=NODE_A)
    caller = await hub.verifier(NODE_A).verify(token)
    assert caller == Caller(
        org=COMMUNITY,
        org_kind=OrgKind.COMMUNITY,
        scopes=frozenset({"resources:read"}),
        client_id=hub.staff.client_id,
        subject=hub.staff.client_id,
        actor=None,
        district=DISTRICT,
    )
    assert caller.token_id
    claims = await asyncio.to_thread(_pyjwt_claims, hub, token, NODE_A)
    assert claims["aud"] == NODE_A


async def test_audience_parameter_sets_aud_and_only_that_audience_accepts(
    hub: RunningHub,
) -> None:
    token = await hub.access_token(hub.staff, audience=NODE_A)
    assert (await hub.verifier(NODE_A).verify(token)).client_id == hub.staff.client_id
    with pytest.raises(TokenAudienceInvalid):
        await hub.verifier(HUB_ID).verify(token)
    with pytest.raises(TokenAudienceInvalid):
        await hub.auth.authenticator.authenticate(f"Bearer {token}")


async def test_different_resource_and_audience_is_invalid_target(hub: RunningHub) -> None:
    response = await hub.token(hub.staff, resource=NODE_A, audience="urn:linli:node:other")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


@pytest.mark.parametrize("parameter", ["resource", "audience"])
@pytest.mark.parametrize("target", ["urn:linli:node:unregistered", "110105001999", "https://x"])
async def test_a_target_that_is_neither_the_hub_nor_a_source_is_invalid_target(
    hub: RunningHub, parameter: str, target: str
) -> None:
    response = await hub.token(hub.staff, **{parameter: target})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert "access_token" not in response.json()


async def test_the_hub_and_every_registered_source_are_targets(hub: RunningHub) -> None:
    for target in (HUB_ID, *SOURCE_IDS):
        token = await hub.access_token(hub.staff, resource=target)
        assert _pyjwt_claims(hub, token, target)["aud"] == target


async def test_wrong_secret_is_invalid_client_401(hub: RunningHub) -> None:
    response = await hub.token(Credentials(hub.staff.client_id, "not-the-secret"))
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert "error_description" in body
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "access_token" not in body


async def test_unknown_client_gets_the_same_answer_as_a_wrong_secret(hub: RunningHub) -> None:
    unknown = await hub.token(Credentials("nobody-here", "whatever"))
    wrong = await hub.token(Credentials(hub.staff.client_id, "whatever"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_wrong_secret_by_post_is_invalid_client(hub: RunningHub) -> None:
    response = await hub.http.post(
        f"{hub.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": hub.staff.client_id,
            "client_secret": "nope",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
async def test_basic_credentials_that_are_not_utf8_are_invalid_client(
    hub: RunningHub, path: str
) -> None:
    response = await hub.http.post(
        f"{hub.url}{path}",
        data={"grant_type": "client_credentials", "token": "x"},
        headers={"Authorization": "Basic //46eA=="},  # base64 of b"\xff\xfe:x"
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "the Basic credentials are not UTF-8",
    }


async def test_no_credentials_is_invalid_client(hub: RunningHub) -> None:
    response = await hub.http.post(
        f"{hub.url}/oauth/token", data={"grant_type": "client_credentials"}
    )
    assert response.json()["error"] == "invalid_client"
    assert response.status_code == 401


async def test_disabled_client_is_invalid_client(hub: RunningHub) -> None:
    who = await hub.add_client(client_id="to-be-disabled")
    assert (await hub.token(who)).status_code == 200
    async with hub.db.transaction() as session:
        await service.disable_client(session, who.client_id)
    response = await hub.token(who)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "The client is disabled.",
    }


@pytest.mark.parametrize("scope", ["pii:read", "resources:read pii:read", "no-such:scope"])
async def test_scope_never_granted_is_invalid_scope(hub: RunningHub, scope: str) -> None:
    response = await hub.token(hub.staff, scope=scope)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert "access_token" not in body


@pytest.mark.parametrize(
    ("grant_type", "error"),
    [
        ("password", "unsupported_grant_type"),
        # The web app's grants (tests/hub/auth/test_people.py), not a machine client's.
        ("authorization_code", "unauthorized_client"),
        ("refresh_token", "unauthorized_client"),
    ],
)
async def test_unsupported_grant_type(hub: RunningHub, grant_type: str, error: str) -> None:
    response = await hub.http.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": grant_type, "username": "a", "password": "b", "code": "c"},
        auth=(hub.staff.client_id, hub.staff.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_json_body_is_invalid_request(hub: RunningHub) -> None:
    response = await hub.http.post(
        f"{hub.url}/oauth/token",
        json={"grant_type": "client_credentials"},
        auth=(hub.staff.client_id, hub.staff.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_repeated_parameter_is_invalid_request(hub: RunningHub) -> None:
    response = await hub.http.post(
        f"{hub.url}/oauth/token",
        content=b"grant_type=client_credentials&scope=resources%3Aread&scope=pii%3Aread",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(hub.staff.client_id, hub.staff.secret),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "parameter 'scope' is repeated",
    }


async def test_metadata_document(hub: RunningHub) -> None:
    response = await hub.http.get(f"{hub.url}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    base = hub.settings.issuer
    assert doc["issuer"] == base
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert doc["introspection_endpoint"] == f"{base}/oauth/introspect"
    assert doc["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert doc["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert doc["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["scopes_supported"] == list(SCOPES)
    assert "records:write" in doc["scopes_supported"]
    # The advertised endpoints are the ones that answer.
    jwks = await hub.http.get(doc["jwks_uri"])
    assert jwks.status_code == 200


async def test_jwks_has_public_keys_only(hub: RunningHub) -> None:
    response = await hub.http.get(hub.jwks_url)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert '"d"' not in response.text
    token = await hub.access_token(hub.staff)
    assert _header(token)["kid"] in {k["kid"] for k in keys}
