"""The hub's OAuth 2.0 authorization server: clients, signing keys, tokens, its own caller check.

Other hub parts use ``HubAuth`` (on ``app.state.auth``), above all
``TokenIssuer.mint_for_source`` to call a source on a caller's behalf and
``HubAuthenticator.authenticate`` to check the hub's own callers.
"""

from hub.auth.component import HubAuth, create_auth
from hub.auth.errors import (
    ClientCredentialsInvalid,
    ClientExists,
    ClientNotFound,
    InvalidClientField,
    ScopeNotGranted,
    TokenClientDisabled,
    TokenRevoked,
    UnknownScope,
)
from hub.auth.keys import KeyRing, key_grace_s
from hub.auth.revocations import HubRevocations
from hub.auth.scopes import SCOPES, format_scopes, parse_scopes
from hub.auth.tables import OAuthClient, RevokedToken, SigningKey
from hub.auth.tokens import (
    HubAuthenticator,
    IssuedToken,
    TokenIssuer,
    VerifiedToken,
    hub_authenticator,
    mint_for_source,
    verify_own_token,
)

__all__ = [
    "SCOPES",
    "ClientCredentialsInvalid",
    "ClientExists",
    "ClientNotFound",
    "HubAuth",
    "HubAuthenticator",
    "HubRevocations",
    "InvalidClientField",
    "IssuedToken",
    "KeyRing",
    "OAuthClient",
    "RevokedToken",
    "ScopeNotGranted",
    "SigningKey",
    "TokenClientDisabled",
    "TokenIssuer",
    "TokenRevoked",
    "UnknownScope",
    "VerifiedToken",
    "create_auth",
    "format_scopes",
    "hub_authenticator",
    "key_grace_s",
    "mint_for_source",
    "parse_scopes",
    "verify_own_token",
]
