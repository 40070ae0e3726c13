"""authlib's OAuth 2.0 authorization server, adapted to the hub's async endpoints.

Machine clients use the client credentials grant. People sign in at the web app,
a public client (``WebClient``, from the settings), with the authorization code
grant and PKCE (S256 only), then refresh with rotation (``HubAuthorizationCodeGrant``,
``HubRefreshTokenGrant``).

authlib's core is synchronous. Each endpoint therefore loads everything the
request needs first (the client named by the credentials, the presented token,
its revocation), then runs authlib's checks over that snapshot in a worker
thread (the secret's KDF is deliberately slow), and finally writes what authlib
decided (a revocation) in the request's transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from hub.auth import service
from hub.auth.people import PersonSnapshot
from hub.auth.scopes import SCOPES, format_scopes
from hub.auth.tables import AuthorizationCode, OAuthClient, PersonSession, RefreshToken
from hub.auth.tokens import JWKS_PATH, IssuedToken, TokenIssuer, VerifiedToken
from hub.settings import HubSettings
from schema.enums import OrgKind
from schema.scopes import Scope

__all__ = [
    "AUTHORIZE_PATH",
    "AUTH_METHODS",
    "ClientSnapshot",
    "CodeSnapshot",
    "HubAuthorizationServer",
    "NewCode",
    "PersonTokens",
    "PreparedRequest",
    "PresentedToken",
    "RefreshSnapshot",
    "WebClient",
    "server_metadata",
]

#: How clients authenticate at the token, introspection and revocation endpoints.
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a password
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
AUTHORIZE_PATH = "/oauth/authorize"
#: The only PKCE method accepted (RFC 7636 §4.2; ``plain`` is refused).
PKCE_METHODS = ["S256"]
#: How the web app (a public client) authenticates: not at all, PKCE binds its code.
PUBLIC_AUTH_METHODS = ["none"]
_MAX_AUDIENCE = 255


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """The requested ``resource``/``audience`` is not acceptable (RFC 8707 §2)."""

    error = "invalid_target"


@dataclass(frozen=True)
class ClientSnapshot(ClientMixin):  # type: ignore[misc]
    """An OAuth client as read from the database for one request."""

    client_id: str
    secret_hash: str
    org: str
    org_kind: OrgKind
    district: str | None
    scopes: frozenset[str]
    disabled: bool

    @classmethod
    def of(cls, row: OAuthClient) -> ClientSnapshot:
        return cls(
            row.client_id,
            row.secret_hash,
            row.org,
            row.org_kind,
            row.district,
            row.scopes,
            row.disabled,
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return format_scopes(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return service.verify_secret(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _UnknownClient(ClientSnapshot):
    """Stands in for a client id that does not exist: fails the secret check in the same time."""

    def check_client_secret(self, client_secret: str) -> bool:
        service.waste_secret_check(client_secret)
        return False


def _unknown(client_id: str) -> ClientSnapshot:
    return _UnknownClient(client_id, "", "", OrgKind.PUBLIC, None, frozenset(), True)


@dataclass(frozen=True)
class WebClient(ClientSnapshot):
    """The web app: a public client, its redirect URIs matched exactly, people's scopes only."""

    redirect_uris: tuple[str, ...] = ()

    @classmethod
    def of_settings(cls, settings: HubSettings) -> WebClient:
        return cls(
            settings.web_client_id,
            "",
            "",
            OrgKind.PUBLIC,
            None,
            frozenset(SCOPES),
            False,
            tuple(settings.web_redirects()),
        )

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in PUBLIC_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class CodeSnapshot(AuthorizationCodeMixin):  # type: ignore[misc]
    """An unused, unexpired authorization code as read for one token request."""

    code_hash: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str

    @classmethod
    def of(cls, row: AuthorizationCode) -> CodeSnapshot:
        return cls(
            row.code_hash,
            row.client_id,
            row.username,
            row.redirect_uri,
            row.scope,
            row.code_challenge,
            row.code_challenge_method,
        )

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class RefreshSnapshot(TokenMixin):  # type: ignore[misc]
    """An unrotated, unexpired refresh token of a live session, as read for one request."""

    token_hash: str
    session_id: str
    client_id: str
    username: str
    scope: str

    @classmethod
    def of(cls, row: RefreshToken, family: PersonSession) -> RefreshSnapshot:
        return cls(row.token_hash, family.id, family.client_id, family.username, family.scope)

    def check_client(self, client: ClientSnapshot) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # expired ones are never loaded

    def is_revoked(self) -> bool:
        return False  # nor rotated ones, nor those of ended sessions


@dataclass(frozen=True)
class NewCode:
    """An authorization code authlib decided to issue; the endpoint stores it."""

    code: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str


@dataclass(frozen=True)
class PersonTokens:
    """Tokens authlib decided to issue to a person; the endpoint records them."""

    session_id: str
    username: str
    client_id: str
    access: IssuedToken
    refresh_token: str

    @property
    def access_expires_at(self) -> datetime:
        return datetime.fromtimestamp(float(self.access.claims["exp"]), tz=UTC)


@dataclass(frozen=True)
class PresentedToken(TokenMixin):  # type: ignore[misc]
    """A token given to the introspection or revocation endpoint, verified as this hub's own."""

    verified: VerifiedToken
    revoked: bool  # its jti was revoked, or its client is disabled or gone

    @property
    def claims(self) -> Mapping[str, Any]:
        return self.verified.claims

    def check_client(self, client: ClientSnapshot) -> bool:
        """Whether ``client`` may revoke or introspect this token: its own, or an admin."""
        return bool(client.client_id == self.claims["client_id"] or Scope.ADMIN in client.scopes)

    def get_scope(self) -> str:
        return str(self.claims["scope"])

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return bool(self.claims["exp"] <= time.time())

    def is_revoked(self) -> bool:
        return self.revoked


class PreparedRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth request with the client and token it names already loaded."""

    def __init__(
        self,
        uri: str,
        headers: Mapping[str, str],
        form: dict[str, str],
        *,
        clients: Mapping[str, ClientSnapshot | None],
        token: PresentedToken | None = None,
        args: dict[str, str] | None = None,
        person: PersonSnapshot | None = None,
        code: CodeSnapshot | None = None,
        refresh: RefreshSnapshot | None = None,
    ) -> None:
        super().__init__("POST" if args is None else "GET", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form if args is None else args)
        self._form = form
        self._args = args or {}
        self.clients = clients
        self.token = token
        self.revocation: PresentedToken | None = None
        self.person = person
        self.code = code
        self.refresh = refresh
        # What authlib decided, for the endpoint to write after it.
        self.new_code: NewCode | None = None
        self.issued: PersonTokens | None = None
        self.consumed_code: CodeSnapshot | None = None
        self.rotated: RefreshSnapshot | None = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return self._args

    def find_client(self, client_id: str) -> ClientSnapshot | None:
        found = self.clients.get(client_id)
        return found if found is not None else _unknown(client_id)


class HubClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials: scope within the client's allowance, audience from ``resource``."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = (self.request.payload.scope or "").split()
        client: ClientSnapshot = self.request.client
        outside = sorted(set(requested) - client.scopes)
        if outside:
            raise InvalidScopeError(f"scope not granted to this client: {' '.join(outside)}")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: ClientSnapshot = self.request.client
        requested = (self.request.payload.scope or "").split()
        issuer: TokenIssuer = self.server.issuer
        issued = issuer.issue(
            client_id=client.client_id,
            org=client.org,
            org_kind=client.org_kind,
            district=client.district,
            scopes=requested or client.scopes,  # RFC 6749 §3.3: the default is all it may have
            audience=self._target(),
        )
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return 200, body, list(self.TOKEN_RESPONSE_HEADER)

    def _target(self) -> str | None:
        """The requested audience, if it names this hub or a source it federates (RFC 8707)."""
        audience = _audience(self.request.form)
        server: HubAuthorizationServer = self.server
        if audience is None or audience == server.settings.hub_id:
            return audience
        if not server.known_source(audience):
            raise InvalidTargetError(f"{audience} is neither this hub nor a source it federates")
        return audience


def _audience(form: Mapping[str, str]) -> str | None:
    """The ``resource`` (RFC 8707) or ``audience`` (RFC 8693) the token is for, if any."""
    given = {form[name] for name in ("resource", "audience") if form.get(name)}
    if len(given) > 1:
        raise InvalidTargetError("resource and audience name different targets")
    audience = next(iter(given), None)
    if audience is not None and (
        len(audience) > _MAX_AUDIENCE or any(c.isspace() for c in audience)
    ):
        raise InvalidTargetError("the requested audience is not a valid identifier")
    return audience


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE (RFC 7636), required, S256 only: no challenge or ``plain`` is ``invalid_request``."""

    SUPPORTED_CODE_CHALLENGE_METHOD = PKCE_METHODS

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") not in PKCE_METHODS:
            raise InvalidRequestError("code_challenge_method must be S256; plain is not accepted")
        super().validate_code_challenge(grant, redirect_uri)


class _PersonGrant:
    """Issues a person's tokens: the hub's JWT naming them (``sub``), and a refresh token."""

    request: PreparedRequest
    server: HubAuthorizationServer

    def session_id(self) -> str:
        """The session the tokens belong to (a new one for a code)."""
        raise NotImplementedError

    def generate_token(
        self,
        user: PersonSnapshot,
        scope: str,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        client: ClientSnapshot = self.request.client
        # Roles may have shrunk since the sign-in: never more than the person has now.
        scopes = [s for s in (scope or "").split() if s in user.scopes]
        session_id = self.session_id()
        access = self.server.issuer.issue(
            client_id=client.client_id,
            org=user.org,
            org_kind=user.org_kind,
            district=user.district,
            scopes=scopes,
            subject=user.username,
            session_id=session_id,
            name=user.display_name,
        )
        refresh_token = secrets.token_urlsafe(32)
        self.request.issued = PersonTokens(
            session_id, user.username, client.client_id, access, refresh_token
        )
        return {
            "access_token": access.access_token,
            "token_type": "Bearer",
            "expires_in": access.expires_in,
            "scope": access.scope,
            "refresh_token": refresh_token,
        }


class HubAuthorizationCodeGrant(_PersonGrant, AuthorizationCodeGrant):  # type: ignore[misc]
    """RFC 6749 §4.1 for the web app: codes single-use and short-lived, stored by the endpoint."""

    # Confidential clients authenticate too, to be told unauthorized_client, not invalid_client.
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AUTH_METHODS + AUTH_METHODS

    def session_id(self) -> str:
        return secrets.token_urlsafe(18)

    def save_authorization_code(self, code: str, request: PreparedRequest) -> None:
        person: PersonSnapshot = request.user
        requested = request.scope.split() if request.scope else []
        scopes = [s for s in requested if s in person.scopes] if requested else person.scopes
        data = request.payload.data
        request.new_code = NewCode(
            code=code,
            client_id=request.client.client_id,
            username=person.username,
            redirect_uri=request.payload.redirect_uri,
            scope=format_scopes(scopes),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
        )

    def query_authorization_code(self, code: str, client: ClientSnapshot) -> CodeSnapshot | None:
        found = self.request.code
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: CodeSnapshot) -> None:
        self.request.consumed_code = authorization_code

    def authenticate_user(self, authorization_code: CodeSnapshot) -> PersonSnapshot | None:
        return _live_person(self.request, authorization_code.username)


class HubRefreshTokenGrant(_PersonGrant, RefreshTokenGrant):  # type: ignore[misc]
    """RFC 6749 §6 with rotation: each refresh token is exchanged once for the next."""

    # Confidential clients authenticate too, to be told unauthorized_client, not invalid_client.
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AUTH_METHODS + AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def session_id(self) -> str:
        refresh: RefreshSnapshot = self.request.refresh_token
        return refresh.session_id

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshSnapshot | None:
        return self.request.refresh

    def authenticate_user(self, refresh_token: RefreshSnapshot) -> PersonSnapshot | None:
        return _live_person(self.request, refresh_token.username)

    def revoke_old_credential(self, refresh_token: RefreshSnapshot) -> None:
        self.request.rotated = refresh_token


def _live_person(request: PreparedRequest, username: str) -> PersonSnapshot | None:
    person = request.person
    if person is None or person.username != username or person.disabled:
        return None
    return person


class HubIntrospectionEndpoint(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 over self-contained tokens: the signature, expiry and revocation decide."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: PreparedRequest, client: ClientSnapshot) -> None:
        _require_token(request)

    def authenticate_token(
        self, request: PreparedRequest, client: ClientSnapshot
    ) -> PresentedToken | None:
        self.check_params(request, client)
        token = request.token
        if token is not None and self.check_permission(token, client, request):
            return token
        return None

    def check_permission(
        self, token: PresentedToken, client: ClientSnapshot, request: PreparedRequest
    ) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        claims = token.claims
        names = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")
        body = {name: claims[name] for name in names if name in claims}
        for extra in ("org", "org_kind", "district", "act"):
            if extra in claims:
                body[extra] = claims[extra]
        return {"active": True, "token_type": "Bearer", **body}


class HubRevocationEndpoint(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: records the token's ``jti``; the endpoint stores it after authlib agrees."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: PreparedRequest, client: ClientSnapshot) -> None:
        _require_token(request)

    def authenticate_token(
        self, request: PreparedRequest, client: ClientSnapshot
    ) -> PresentedToken | None:
        self.check_params(request, client)
        token = request.token
        if token is not None and not token.check_client(client):
            raise InvalidGrantError("The token was not issued to this client.")
        return token

    def revoke_token(self, token: PresentedToken, request: PreparedRequest) -> None:
        request.revocation = token


def _require_token(request: PreparedRequest) -> None:
    # token_type_hint is ignored (RFC 7662 §2.1, RFC 7009 §2.1): only access tokens exist here.
    if "token" not in request.form:
        raise InvalidRequestError("Missing 'token' parameter.")


Response = tuple[int, Any, list[tuple[str, str]]]


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """The hub's authorization server: client credentials, the web app's authorization code
    with PKCE and refresh, introspection, revocation."""

    def __init__(
        self, settings: HubSettings, issuer: TokenIssuer, known_source: Callable[[str], bool]
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.issuer = issuer
        self.known_source = known_source
        self.web_client = WebClient.of_settings(settings)
        self.register_grant(HubClientCredentialsGrant)
        self.register_grant(HubAuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(HubRefreshTokenGrant)
        self.register_endpoint(HubIntrospectionEndpoint)
        self.register_endpoint(HubRevocationEndpoint)

    def query_client(self, client_id: str) -> WebClient | None:
        """The client of an authorization request: only the web app has a redirect URI."""
        return self.web_client if client_id == self.web_client.client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to save: access tokens are self-contained JWTs."""

    def validate_requested_scope(self, scope: str | None) -> None:
        """Checked against the client's own scopes by the grant."""

    def authenticate_client(
        self, request: PreparedRequest, methods: list[str], endpoint: str = "token"
    ) -> ClientSnapshot:
        client: ClientSnapshot = ClientAuthentication(request.find_client)(
            request, methods, endpoint
        )
        if client.disabled:
            raise InvalidClientError(status_code=401, description="The client is disabled.")
        return client

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals."""

    def create_oauth2_request(self, request: PreparedRequest) -> PreparedRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return status, body, list(headers)


def server_metadata(settings: HubSettings) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata document."""
    base = settings.issuer.rstrip("/")
    metadata = AuthorizationServerMetadata(
        {
            "issuer": settings.issuer,
            "token_endpoint": base + TOKEN_PATH,
            "jwks_uri": base + JWKS_PATH,
            "introspection_endpoint": base + INTROSPECTION_PATH,
            "revocation_endpoint": base + REVOCATION_PATH,
            "authorization_endpoint": base + AUTHORIZE_PATH,
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": PKCE_METHODS,
            "token_endpoint_auth_methods_supported": AUTH_METHODS + PUBLIC_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS + PUBLIC_AUTH_METHODS,
            "scopes_supported": list(SCOPES),
            "ui_locales_supported": ["zh-CN", "en"],
        }
    )
    if settings.production:
        # https everywhere, among others.
        for key in metadata.REGISTRY_KEYS:
            getattr(metadata, f"validate_{key}")()
    return dict(metadata)
