"""Production mode: no GraphiQL, no introspection, no suggestions, no GET queries, no static tokens."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from schema.runtime.settings import Environment
from tests.conftest import ServerThread, migrate
from tests.node.conftest import ORG, node_settings
from tests.node.issuer import TestIssuer


async def test_production_mode_hides_the_schema(tmp_path: Path, issuer: TestIssuer) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}"
    await migrate(MIGRATIONS, url)
    settings = NodeSettings(
        environment=Environment.PRODUCTION,
        database_url=url,
        org_code=ORG,
        token_issuer=issuer.issuer,
        jwks_url=issuer.jwks_url,
    )
    server = ServerThread(create_app(settings)).start()
    token = issuer.mint(org=ORG, aud=ORG)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30.0) as http:
            ide = await http.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in ide.text.lower()
            assert not ide.headers["content-type"].startswith("text/html")
            assert (await http.get("/graphiql/graphiql.min.js")).status_code == 404
            body = (
                await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
            ).json()
            assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
            body = (
                await http.post("/graphql", json={"query": "{ resourcez { edges { cursor } } }"})
            ).json()
            assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "Did you mean" not in body["errors"][0]["message"]
            get = await http.get("/graphql", params={"query": "{ resourceKinds { code } }"})
            assert get.status_code in (400, 405)
            assert (await http.get("/docs")).status_code == 404
            # The access token works: the request above was authenticated, this one too.
            ok = (await http.post("/graphql", json={"query": "{ resourceKinds { code } }"})).json()
            assert ok["data"]["resourceKinds"]
    finally:
        server.stop()


def test_production_refuses_static_tokens() -> None:
    with pytest.raises(ValidationError, match="development and tests only"):
        NodeSettings(
            environment=Environment.PRODUCTION,
            token_issuer="https://hub.example",
            jwks_url="https://hub.example/jwks.json",
            trusted_callers=[{"token": "x" * 40, "org": ORG}],
        )


def test_production_refuses_a_node_without_token_checks() -> None:
    with pytest.raises(ValidationError, match="needs token_issuer and jwks_url"):
        NodeSettings(environment=Environment.PRODUCTION)


def test_issuer_and_jwks_url_come_together() -> None:
    with pytest.raises(ValidationError, match="must be set together"):
        NodeSettings(token_issuer="https://hub.example")


def test_create_app_rechecks_settings_changed_after_validation(tmp_path: Path) -> None:
    # model_copy skips validation; create_app must not.
    settings = node_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}").model_copy(
        update={"environment": Environment.PRODUCTION}
    )
    with pytest.raises(ValueError, match="development and tests only"):
        create_app(settings)
    assert not (tmp_path / "x.db").exists()
