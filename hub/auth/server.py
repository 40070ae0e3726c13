"""authlib's OAuth 2.0 authorization server, adapted to the hub's async endpoints.

authlib's core is synchronous. Each endpoint therefore loads everything the
request needs first (the client named by the credentials, the presented token,
its revocation), then runs authlib's checks over that snapshot in a worker
thread (the secret's KDF is deliberately slow), and finally writes what authlib
decided (a revocation) in the request's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from hub.auth import service
from hub.auth.scopes import SCOPES, format_scopes
from hub.auth.tables import OAuthClient
from hub.auth.tokens import JWKS_PATH, TokenIssuer, VerifiedToken
from hub.settings import HubSettings
from schema.enums import OrgKind
from schema.scopes import Scope

__all__ = [
    "AUTH_METHODS",
    "ClientSnapshot",
    "HubAuthorizationServer",
    "PreparedRequest",
    "PresentedToken",
    "server_metadata",
]

#: How clients authenticate at the token, introspection and revocation endpoints.
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a password
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
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
    ) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form
        self.clients = clients
        self.token = token
        self.revocation: PresentedToken | None = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}

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
    """The hub's authorization server: client credentials, introspection, revocation."""

    def __init__(
        self, settings: HubSettings, issuer: TokenIssuer, known_source: Callable[[str], bool]
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.issuer = issuer
        self.known_source = known_source
        self.register_grant(HubClientCredentialsGrant)
        self.register_endpoint(HubIntrospectionEndpoint)
        self.register_endpoint(HubRevocationEndpoint)

    def query_client(self, client_id: str) -> None:
        raise RuntimeError("clients are loaded per request; see PreparedRequest")

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
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "scopes_supported": list(SCOPES),
        }
    )
    if settings.production:
        # https everywhere, among others. No response types: there is no authorization
        # endpoint, and authlib's validator insists on a non-empty list.
        for key in metadata.REGISTRY_KEYS:
            if key != "response_types_supported":
                getattr(metadata, f"validate_{key}")()
    return dict(metadata)
