"""A test OAuth issuer: an EC signing key, its JWKS served over real HTTP, tokens minted with pyjwt."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import ServerThread

ISSUER = "https://hub.linli.test"
KID = "hub-test-1"
DISTRICT = "110105"
HUB_KEY = ec.generate_private_key(ec.SECP256R1())

READ_SCOPES = (
    "incidents:read resources:read shelters:read volunteers:read risk:verify alerts:read"
    " aid:request aid:respond"
)
ALL_READ_SCOPES = f"{READ_SCOPES} pii:read"


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}


class TestIssuer:
    """The hub's token issuer as a node sees it: a JWKS URL and tokens signed by its key."""

    __test__ = False

    def __init__(self) -> None:
        keys = {"keys": [public_jwk(HUB_KEY, KID)]}

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(keys)

        self.server = ServerThread(Starlette(routes=[Route("/jwks.json", jwks)])).start()
        self.issuer = ISSUER
        self.jwks_url = f"{self.server.url}/jwks.json"

    def claims(
        self,
        *,
        org: str,
        aud: str,
        org_kind: str = "community",
        scope: str = ALL_READ_SCOPES,
        district: str | None = DISTRICT,
        client_id: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": f"user@{org}",
            "aud": aud,
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "client_id": client_id or f"app-{org}",
            "scope": scope,
            "org": org,
            "org_kind": org_kind,
            "district": district,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        *,
        key: Any = HUB_KEY,
        headers: dict[str, Any] | None = None,
        algorithm: str = "ES256",
        **claims: Any,
    ) -> str:
        header = {"kid": KID, "typ": "at+jwt", **(headers or {})}
        return jwt.encode(self.claims(**claims), key, algorithm=algorithm, headers=header)

    def stop(self) -> None:
        self.server.stop()
