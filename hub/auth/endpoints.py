"""The authorization server's HTTP endpoints: authorize (the sign-in page), token,
introspection, revocation, metadata, JWKS.

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
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from hub.auth import people, service
from hub.auth.keys import KeyRing
from hub.auth.people import IssuedRevocation, PersonSnapshot
from hub.auth.revocations import HubRevocations
from hub.auth.server import (
    AUTHORIZE_PATH,
    INTROSPECTION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    ClientSnapshot,
    CodeSnapshot,
    HubAuthorizationServer,
    PreparedRequest,
    PresentedToken,
    RefreshSnapshot,
    server_metadata,
)
from hub.auth.signin import render_error, render_signin
from hub.auth.tokens import JWKS_PATH, verify_own_token
from hub.settings import HubSettings
from hub.throttle import RATE_LIMITED, Throttle, per_minute
from policies.revocations import REVOCATIONS_PATH
from policies.tokens import JwksCache
from schema.runtime.db import Database
from schema.storage import utcnow

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
    return _single_values(pairs)


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
        # Failed sign-ins at the sign-in page, per username and per remote address.
        self.signin_by_person = Throttle.of(
            per_minute(settings.signin_failures_per_person), "signin-person"
        )
        self.signin_by_address = Throttle.of(
            per_minute(settings.signin_failures_per_address), "signin-address"
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
                if client_id == self.server.web_client.client_id:
                    clients[client_id] = self.server.web_client
                    continue
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
        # The web app has no secret to guess: throttling its id would lock every person out.
        confidential = sorted(set(prepared.clients) - {self.server.web_client.client_id})
        for client_id in confidential:
            if not self.failures_by_client.allows(client_id):
                return _slow_down(self.failures_by_client, client_id, "for this client")
        await self.keys.refresh_if_stale()
        await self._load_person_grant(prepared)
        # In a worker thread: the secret check is a deliberately slow KDF.
        result = await asyncio.to_thread(self.server.create_token_response, prepared)
        if _client_refused(result):
            self.failures_by_address.hit(address)
            for client_id in confidential:
                self.failures_by_client.hit(client_id)
        issued = result is not None and result[0] == 200 and prepared.issued is not None
        if issued and not await self._record_issued(prepared):
            # Exchanged meanwhile by another request: now a replay, handled as one.
            await self._load_person_grant(prepared)
            return _oauth_error(400, "invalid_grant", "the grant was used already")
        return _response(result)

    def _ended(self, revoked: list[IssuedRevocation]) -> None:
        """Refuse a ended session's access tokens here at once (other replicas reload)."""
        for item in revoked:
            self.revocations.revoked(jti=item.jti, expires_at=item.expires_at)

    async def _load_person_grant(self, prepared: PreparedRequest) -> None:
        """Load the code or refresh token presented, and its person; end a replayed one's session.

        RFC 6749 §4.1.2: a code used twice revokes the tokens issued for it; a refresh
        token presented after it was rotated (OAuth 2.0 Security BCP §4.14) does the same.
        """
        form = prepared.form
        grant_type = form.get("grant_type")
        now = utcnow()
        ended: list[IssuedRevocation] = []
        async with self.db.transaction() as session:
            username: str | None = None
            if grant_type == "authorization_code" and form.get("code"):
                code = await people.load_code(session, form["code"])
                if code is not None and code.used_at is not None and code.session_id:
                    ended = await people.end_session(
                        session, code.session_id, reason="code replayed"
                    )
                elif code is not None and code.used_at is None and code.expires_at > now:
                    prepared.code = CodeSnapshot.of(code)
                    username = code.username
            elif grant_type == "refresh_token" and form.get("refresh_token"):
                found = await people.load_refresh_token(session, form["refresh_token"])
                if found is not None:
                    row, family = found
                    if family.revoked_at is None and row.rotated_at is not None:
                        ended = await people.end_session(
                            session, family.id, reason="refresh token reused"
                        )
                    elif family.revoked_at is None and row.expires_at > now:
                        prepared.refresh = RefreshSnapshot.of(row, family)
                        username = family.username
            if username is not None:
                person = await people.get_person(session, username)
                prepared.person = PersonSnapshot.of(person) if person is not None else None
        self._ended(ended)

    async def _record_issued(self, prepared: PreparedRequest) -> bool:
        """Store a person's new refresh token, and the code or refresh token it used up."""
        issued = prepared.issued
        assert issued is not None
        async with self.db.transaction() as session:
            if prepared.consumed_code is not None:
                await people.start_session(
                    session,
                    session_id=issued.session_id,
                    username=issued.username,
                    client_id=issued.client_id,
                    scope=issued.access.scope,
                )
                used = prepared.consumed_code.code_hash
                if not await people.exchange_code(session, used, issued.session_id):
                    await session.rollback()
                    return False
            elif prepared.rotated is not None and not await people.rotate_refresh_token(
                session, prepared.rotated.token_hash
            ):
                await session.rollback()
                return False
            await people.save_refresh_token(
                session,
                token=issued.refresh_token,
                session_id=issued.session_id,
                ttl_s=self.settings.refresh_token_ttl_s,
                access_jti=issued.access.jti,
                access_expires_at=issued.access_expires_at,
            )
        return True

    def _authorization_request(self, params: dict[str, str]) -> PreparedRequest:
        return PreparedRequest(
            self._uri(AUTHORIZE_PATH),
            {},
            {},
            args=params,
            clients={self.server.web_client.client_id: self.server.web_client},
        )

    def _signin_page(
        self,
        params: dict[str, str],
        *,
        username: str = "",
        error: str | None = None,
        status: int = 200,
        retry_after: int = 0,
    ) -> HTMLResponse:
        page = render_signin(
            action=AUTHORIZE_PATH,
            params=params,
            hub_name=self.settings.hub_name,
            username=username,
            error=error,
            retry_after=retry_after,
        )
        headers = dict(self._page_headers)
        if error is not None:
            headers["X-Linli-Code"] = error
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return HTMLResponse(page, status_code=status, headers=headers)

    @property
    def _page_headers(self) -> dict[str, str]:
        origins = " ".join(sorted({_origin(u) for u in self.server.web_client.redirect_uris}))
        return {
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
            f" form-action 'self' {origins}; frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        }

    def _authorization_refused(self, error: OAuth2Error, params: dict[str, str]) -> Any:
        """Back to the client with the error, once its redirect URI is known good; else a page."""
        if error.redirect_uri:
            _, _, headers = error()
            return RedirectResponse(dict(headers)["Location"], status_code=302)
        detail = error.description or error.error
        headers = {**self._page_headers, "X-Linli-Code": str(error.error)}
        return HTMLResponse(render_error(params=params, detail=detail), 400, headers=headers)

    async def authorize(self, request: Request) -> Any:
        """RFC 6749 §4.1.1: check the web app's request, then show the sign-in page."""
        try:
            params = _single_values(parse_qsl(request.url.query, keep_blank_values=True))
        except _BadForm as error:
            return HTMLResponse(render_error(params={}, detail=str(error)), 400)
        try:
            self.server.get_consent_grant(self._authorization_request(params))
        except OAuth2Error as error:
            return self._authorization_refused(error, params)
        return self._signin_page(params)

    async def sign_in(self, request: Request) -> Any:
        """The sign-in form: a right password sends the person back with a code (303)."""
        try:
            params = await _form(request)
        except _BadForm as error:
            return HTMLResponse(render_error(params={}, detail=str(error)), 400)
        username = params.pop("username", "").strip()
        password = params.pop("password", "")
        prepared = self._authorization_request(params)
        try:
            grant = self.server.get_consent_grant(prepared)
        except OAuth2Error as error:
            return self._authorization_refused(error, params)
        address = request.client.host if request.client else ""
        for throttle, key in ((self.signin_by_address, address), (self.signin_by_person, username)):
            if not throttle.allows(key):
                retry = throttle.retry_after(key)
                return self._signin_page(
                    params, username=username, error=RATE_LIMITED, status=429, retry_after=retry
                )
        async with self.db.sessions() as session:
            row = await people.get_person(session, username) if username else None
        person = PersonSnapshot.of(row) if row is not None else None
        # In a worker thread: argon2id is deliberately slow.
        if not await asyncio.to_thread(_password_matches, person, password):
            self.signin_by_address.hit(address)
            self.signin_by_person.hit(username)
            return self._signin_page(params, username=username, error="SIGNIN_FAILED", status=401)
        assert person is not None
        if person.disabled:
            return self._signin_page(
                params, username=username, error="ACCOUNT_DISABLED", status=403
            )
        status, _, headers = self.server.create_authorization_response(
            prepared, grant_user=person, grant=grant
        )
        location = dict(headers).get("Location")
        new = prepared.new_code
        if location is None or new is None:  # pragma: no cover - authlib refused after all
            return HTMLResponse(render_error(params=params, detail=str(status)), 400)
        async with self.db.transaction() as session:
            await people.save_code(
                session,
                code=new.code,
                client_id=new.client_id,
                username=new.username,
                redirect_uri=new.redirect_uri,
                scope=new.scope,
                code_challenge=new.code_challenge,
                code_challenge_method=new.code_challenge_method,
                ttl_s=self.settings.authorization_code_ttl_s,
            )
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})

    async def _sign_out(self, form: dict[str, str]) -> JSONResponse:
        """RFC 7009 for the web app (a public client): a refresh or access token ends its session.

        Answered 200 whatever the token (§2.2), like the revocation of a client's token.
        """
        presented = form.get("token")
        if not presented:
            return _oauth_error(400, "invalid_request", "Missing 'token' parameter.")
        web_id = self.server.web_client.client_id
        session_id: str | None = None
        async with self.db.transaction() as session:
            found = await people.load_refresh_token(session, presented)
            if found is not None and found[1].client_id == web_id:
                session_id = found[1].id
            else:
                verified = await verify_own_token(presented, settings=self.settings, jwks=self.jwks)
                if verified is not None and verified.claims.get("client_id") == web_id:
                    sid = verified.claims.get("sid")
                    session_id = sid if isinstance(sid, str) else None
            ended = (
                await people.end_session(session, session_id, reason="signed out")
                if session_id is not None
                else []
            )
        self._ended(ended)
        return JSONResponse({}, headers=dict(default_json_headers))

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
        """RFC 7009: the token's jti is refused until the token would have expired.

        The web app (a public client, no credentials) signs out here: its token ends the
        person's session, every access token of it revoked (``_sign_out``).
        """
        if "authorization" not in request.headers:
            try:
                form = await _form(request)
            except _BadForm as error:
                return _oauth_error(400, "invalid_request", str(error))
            if form.get("client_id") == self.server.web_client.client_id:
                return await self._sign_out(form)
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


def _password_matches(person: PersonSnapshot | None, password: str) -> bool:
    if person is None:
        people.waste_password_check(password)
        return False
    return people.verify_password(password, person.password_hash)


def _origin(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Parameters that appear once (RFC 6749 §3.1); empty ones count as absent."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise _BadForm(f"parameter {name!r} is repeated")
        if value:
            values[name] = value
    return values


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
    router.add_api_route(AUTHORIZE_PATH, endpoints.authorize, methods=["GET"])
    router.add_api_route(AUTHORIZE_PATH, endpoints.sign_in, methods=["POST"])
    router.add_api_route(TOKEN_PATH, endpoints.token, methods=["POST"])
    router.add_api_route(INTROSPECTION_PATH, endpoints.introspect, methods=["POST"])
    router.add_api_route(REVOCATION_PATH, endpoints.revoke, methods=["POST"])
    router.add_api_route(METADATA_PATH, endpoints.metadata_document, methods=["GET"])
    router.add_api_route(JWKS_PATH, endpoints.jwks_document, methods=["GET"])
    router.add_api_route(REVOCATIONS_PATH, revocations.endpoint, methods=["GET"])
    return router
