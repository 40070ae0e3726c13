"""Key rotation: new tokens use the new key; old tokens verify until they expire; then it goes."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
import pytest

from hub.auth import SigningKey, key_grace_s, service
from policies.tokens import TokenKidUnknown
from tests.hub.auth.conftest import HUB_ID, RunningHub


def _kid(token: str) -> str:
    encoded = token.split(".")[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    kid: str = header["kid"]
    return kid


def _pyjwt_accepts(hub: RunningHub, token: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(hub.jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["ES256"], audience=HUB_ID, issuer=hub.settings.issuer
    )
    return claims


async def _served_kids(hub: RunningHub) -> list[str]:
    return [k["kid"] for k in (await hub.http.get(hub.jwks_url)).json()["keys"]]


async def test_rotation_signs_with_a_new_key_and_keeps_the_old_one_published(
    hub: RunningHub,
) -> None:
    old_token = await hub.access_token(hub.staff)
    old_kid = _kid(old_token)

    new_kid = await hub.auth.keys.rotate()  # as `linli keys rotate` or another replica would
    assert new_kid != old_kid
    # The server reloads its keys within key_refresh_s.
    deadline = time.monotonic() + 30
    while (new_token := await hub.access_token(hub.staff)) and _kid(new_token) != new_kid:
        assert time.monotonic() < deadline, "the hub never switched to the new key"
        await asyncio.sleep(0.1)

    served = await _served_kids(hub)
    assert served[0] == new_kid  # newest first
    assert old_kid in served
    # Tokens signed by the old key still verify: pyjwt, the node's verifier, the hub itself.
    assert (await asyncio.to_thread(_pyjwt_accepts, hub, old_token))["sub"] == hub.staff.client_id
    assert (await hub.verifier(HUB_ID).verify(old_token)).client_id == hub.staff.client_id
    assert (await hub.auth.authenticator.authenticate(f"Bearer {old_token}")).token_id
    assert (await asyncio.to_thread(_pyjwt_accepts, hub, new_token))["sub"] == hub.staff.client_id
    assert (await hub.verifier(HUB_ID).verify(new_token)).client_id == hub.staff.client_id


async def test_retired_keys_go_once_their_tokens_have_expired(hub: RunningHub) -> None:
    token = await hub.access_token(hub.staff)
    kid = _kid(token)
    await hub.auth.keys.rotate()
    assert kid in await _served_kids(hub)

    # Pretend the grace period has passed since the key was retired.
    async with hub.db.transaction() as session:
        row = await session.get(SigningKey, kid)
        assert row is not None
        assert row.retired_at is not None
        row.retired_at = row.retired_at.replace(year=row.retired_at.year - 1)
    deadline = time.monotonic() + 30
    while kid in await _served_kids(hub):
        assert time.monotonic() < deadline, "the expired key is still published"
        await asyncio.sleep(0.1)
    # The node's verifier can no longer find the key.
    with pytest.raises(TokenKidUnknown):
        await hub.verifier(HUB_ID).verify(token)
    # The next rotation deletes it from the database.
    await hub.auth.keys.rotate()
    async with hub.db.sessions() as session:
        assert await session.get(SigningKey, kid) is None


async def test_grace_period_covers_token_lifetime_and_reload_delay(hub: RunningHub) -> None:
    settings = hub.settings
    assert key_grace_s(settings) == settings.access_token_ttl_s + settings.key_refresh_s
    async with hub.db.transaction() as session:
        first = await service.ensure_signing_key(session, sealer=settings.sealer())
        again = await service.ensure_signing_key(session, sealer=settings.sealer())
        assert first.kid == again.kid  # one active key: no new key while one exists
        published = await service.published_keys(session, grace_s=key_grace_s(settings))
        assert published[0].kid == first.kid
        assert all(hub.auth.keys.private_jwk(k).get("d") for k in published)
