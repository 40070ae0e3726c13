"""The authorization server's HTTP endpoints: token, introspection, revocation, metadata, JWKS.

And ``GET /oauth/revocations``: the signed list of revoked tokens and disabled
clients every source polls (``hub.auth.revocations``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.auth import service
from hub.auth.keys import KeyRing
from hub.auth.revocations import HubRevocations
from hub.auth.server import (
    INTROSPECTION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    ClientSnapshot,
    HubAuthorizationServer,
    PreparedRequest,
    PresentedToken,
    server_metadata,
)
from hub.auth.tokens import JWKS_PATH, verify_own_token
from hub.settings import HubSettings
from hub.throttle import RATE_LIMITED, Throttle, per_minute
from policies.revocations import REVOCATIONS_PATH
from policies.tokens import JwksCache
from schema.runtime.db import Database

__all__ = ["METADATA_PATH", "auth_router"]

METADATA_PATH = "/.well-known/oauth-authorization-server"
_FORM = "application/x-www-form-urlencoded"


class _BadForm(Exception):
    """The request body is not a well-formed OAuth form."""


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers=dict(default_json_headers),
    )


async def _form(request: Request) -> dict[str, str]:
    """The form parameters; RFC 6749 §3.2: none may repeat, empty ones count as absent."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _FORM:
        raise _BadForm(f"the request body must be {_FORM}")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise _BadForm("the request body is not a valid form") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _BadForm(f"parameter {name!r} is repeated")
        if value:
            form[name] = value
    return form


class _Endpoints:
    def __init__(
        self,
        settings: HubSettings,
        db: Database,
        keys: KeyRing,
        jwks: JwksCache,
        server: HubAuthorizationServer,
        revocations: HubRevocations,
    ) -> None:
        self.revocations = revocations
        self.settings = settings
        self.db = db
        self.keys = keys
        self.jwks = jwks
        self.server = server
        self.metadata = server_metadata(settings)
        # Failed client authentications at /oauth/token, per remote address and per client id:
        # a throttled request is refused before its secret is checked (a deliberately slow KDF).
        self.failures_by_address = Throttle.of(
            per_minute(settings.token_failures_per_address), "token-address"
        )
        self.failures_by_client = Throttle.of(
            per_minute(settings.token_failures_per_client), "token-client"
        )

    def _uri(self, path: str) -> str:
        uri = self.settings.issuer.rstrip("/") + path
        # authlib refuses plain http except on loopback; outside production the hub may
        # run on plain http anywhere (the demo, compose), so present it as loopback there.
        if not self.settings.production and not is_secure_transport(uri):
            return "http://127.0.0.1" + path
        return uri

    async def _prepare(
        self, request: Request, path: str, *, with_token: bool
    ) -> PreparedRequest | JSONResponse:
        try:
            form = await _form(request)
        except _BadForm as error:
            return _oauth_error(400, "invalid_request", str(error))
        try:
            basic_id, _ = extract_basic_authorization(request.headers)
        except UnicodeDecodeError:
            return _oauth_error(401, "invalid_client", "the Basic credentials are not UTF-8")
        named = {i for i in (basic_id, form.get("client_id")) if i}
        token: PresentedToken | None = None
        async with self.db.sessions() as session:
            clients: dict[str, ClientSnapshot | None] = {}
            for client_id in named:
                row = await service.get_client(session, client_id)
                clients[client_id] = ClientSnapshot.of(row) if row is not None else None
            presented = form.get("token")
            if with_token and presented:
                verified = await verify_own_token(presented, settings=self.settings, jwks=self.jwks)
                if verified is not None:
                    owner = await service.get_client(session, verified.caller.client_id)
                    revoked = (
                        owner is None
                        or owner.disabled
                        or await service.is_token_revoked(session, str(verified.claims["jti"]))
                    )
                    token = PresentedToken(verified, revoked)
        return PreparedRequest(self._uri(path), request.headers, form, clients=clients, token=token)

    async def token(self, request: Request) -> JSONResponse:
        """RFC 6749 §4.4 client credentials; the token is an RFC 9068 JWT.

        After too many failed client authentications from one address, or for one
        client id, further attempts are answered 429 ``slow_down`` with ``Retry-After``
        until the window frees up, without checking the secret.
        """
        address = request.client.host if request.client else ""
        if not self.failures_by_address.allows(address):
            return _slow_down(self.failures_by_address, address, "from this address")
        prepared = await self._prepare(request, TOKEN_PATH, with_token=False)
        if isinstance(prepared, JSONResponse):
            return prepared
        for client_id in sorted(prepared.clients):
            if not self.failures_by_client.allows(client_id):
                return _slow_down(self.failures_by_client, client_id, "for this client")
        await self.keys.refresh_if_stale()
        # In a worker thread: the secret check is a deliberately slow KDF.
        result = await asyncio.to_thread(self.server.create_token_response, prepared)
        if _client_refused(result):
            self.failures_by_address.hit(address)
            for client_id in prepared.clients:
                self.failures_by_client.hit(client_id)
        return _response(result)

    async def introspect(self, request: Request) -> JSONResponse:
        """RFC 7662: whether a token is active, and its claims (to its own client or an admin)."""
        prepared = await self._prepare(request, INTROSPECTION_PATH, with_token=True)
        if isinstance(prepared, JSONResponse):
            return prepared
        result = await asyncio.to_thread(
            self.server.create_endpoint_response, "introspection", prepared
        )
        return _response(result)

    async def revoke(self, request: Request) -> JSONResponse:
        """RFC 7009: the token's jti is refused until the token would have expired."""
        prepared = await self._prepare(request, REVOCATION_PATH, with_token=True)
        if isinstance(prepared, JSONResponse):
            return prepared
        result = await asyncio.to_thread(
            self.server.create_endpoint_response, "revocation", prepared
        )
        revoked = prepared.revocation
        if revoked is not None and result[0] == 200:
            claims = revoked.claims
            async with self.db.transaction() as session:
                await service.record_revocation(
                    session,
                    jti=str(claims["jti"]),
                    client_id=str(claims["client_id"]),
                    expires_at=_datetime(claims["exp"]),
                )
            # Refused here at once; other replicas and sources within the stated bound.
            self.revocations.revoked(jti=str(claims["jti"]), expires_at=_datetime(claims["exp"]))
        return _response(result)

    async def metadata_document(self) -> JSONResponse:
        """RFC 8414 authorization server metadata."""
        return JSONResponse(self.metadata)

    async def jwks_document(self) -> JSONResponse:
        """The public signing keys (active, and retired ones whose tokens may still be live)."""
        await self.keys.refresh_if_stale()
        return JSONResponse(self.keys.jwks(), headers={"Cache-Control": "public, max-age=60"})


def _slow_down(throttle: Throttle, key: str, whom: str) -> JSONResponse:
    retry_after = throttle.retry_after(key)
    return JSONResponse(
        {
            "error": "slow_down",
            "error_description": f"too many failed client authentications {whom};"
            f" retry after {retry_after} s",
            "code": RATE_LIMITED,
        },
        status_code=429,
        headers={**dict(default_json_headers), "Retry-After": str(retry_after)},
    )


def _client_refused(result: tuple[int, Any, list[tuple[str, str]]] | None) -> bool:
    """Whether the token endpoint refused the client's authentication (``invalid_client``)."""
    if result is None:
        return False
    body = result[1]
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return False
    return isinstance(body, dict) and body.get("error") == "invalid_client"


def _datetime(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _response(result: tuple[int, Any, list[tuple[str, str]]] | None) -> JSONResponse:
    if result is None:  # pragma: no cover - authlib returns None only for interactive endpoints
        return _oauth_error(500, "server_error", "no response")
    status, body, headers = result
    return JSONResponse(body, status_code=status, headers=_headers(headers))


def _headers(headers: list[tuple[str, str]]) -> Mapping[str, str]:
    return {name: value for name, value in headers if name.lower() != "content-type"}


def auth_router(
    settings: HubSettings,
    db: Database,
    keys: KeyRing,
    jwks: JwksCache,
    server: HubAuthorizationServer,
    revocations: HubRevocations,
) -> APIRouter:
    """The router of the authorization server's endpoints."""
    endpoints = _Endpoints(settings, db, keys, jwks, server, revocations)
    router = APIRouter(tags=["oauth"])
    router.add_api_route(TOKEN_PATH, endpoints.token, methods=["POST"])
    router.add_api_route(INTROSPECTION_PATH, endpoints.introspect, methods=["POST"])
    router.add_api_route(REVOCATION_PATH, endpoints.revoke, methods=["POST"])
    router.add_api_route(METADATA_PATH, endpoints.metadata_document, methods=["GET"])
    router.add_api_route(JWKS_PATH, endpoints.jwks_document, methods=["GET"])
    router.add_api_route(REVOCATIONS_PATH, revocations.endpoint, methods=["GET"])
    return router
