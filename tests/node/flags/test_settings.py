"""Delivery settings: all three or none, and no placeholder secret in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from node.settings import NodeSettings

HUB = {"hub_url": "http://hub.test", "hub_client_id": "110105001001-ab12cd34"}
SECRET = "s3cr3t-that-is-long-enough-for-production"


def test_hub_settings_come_together() -> None:
    assert not NodeSettings().delivers_flags
    with pytest.raises(ValidationError, match="must be set together"):
        NodeSettings(**HUB)
    settings = NodeSettings(**HUB, hub_client_secret=SECRET)
    assert settings.delivers_flags
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_production_refuses_a_placeholder_secret() -> None:
    production = {
        "environment": "production",
        "token_issuer": "https://hub.test",
        "jwks_url": "https://hub.test/.well-known/jwks.json",
        **HUB,
    }
    with pytest.raises(ValidationError, match="placeholder or too short"):
        NodeSettings(**production, hub_client_secret="changeme")
    assert NodeSettings(**production, hub_client_secret=SECRET).delivers_flags
