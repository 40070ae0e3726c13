"""Production mode: no GraphiQL, no introspection, no field suggestions, no GET queries."""

from __future__ import annotations

from pathlib import Path

import httpx

from node.app import MIGRATIONS, create_app
from schema.runtime.settings import Environment
from tests.conftest import ServerThread, migrate
from tests.node.conftest import STAFF_TOKEN, node_settings


async def test_production_mode_hides_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}"
    await migrate(MIGRATIONS, url)
    settings = node_settings(url).model_copy(update={"environment": Environment.PRODUCTION})
    server = ServerThread(create_app(settings)).start()
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
            ide = await http.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in ide.text.lower()
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
    finally:
        server.stop()
