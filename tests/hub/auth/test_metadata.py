"""In production the metadata must be valid RFC 8414: an https issuer, or the hub does not start."""

from __future__ import annotations

import pytest

from hub.app import create_app
from hub.auth.server import server_metadata
from hub.sealed import new_key
from hub.settings import HubSettings
from schema.runtime.settings import Environment


def test_production_metadata_with_an_https_issuer() -> None:
    settings = HubSettings(
        environment=Environment.PRODUCTION, issuer="https://hub.example.org", secrets_key=new_key()
    )
    metadata = server_metadata(settings)
    assert metadata["issuer"] == "https://hub.example.org"
    assert metadata["token_endpoint"] == "https://hub.example.org/oauth/token"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["authorization_endpoint"] == "https://hub.example.org/oauth/authorize"
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_production_refuses_a_plain_http_issuer() -> None:
    settings = HubSettings(
        environment=Environment.PRODUCTION, issuer="http://hub.example.org", secrets_key=new_key()
    )
    with pytest.raises(ValueError, match="https"):
        create_app(settings)


def test_development_allows_a_plain_http_issuer() -> None:
    settings = HubSettings(issuer="http://hub.internal:8000")
    assert server_metadata(settings)["jwks_uri"] == "http://hub.internal:8000/.well-known/jwks.json"
