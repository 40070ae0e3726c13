"""Fixtures of the adapter tests: an upstream document server, adapter services on free ports."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.service import Adapter, create_adapter_app
from adapters.settings import AdapterServiceSettings
from adapters.store import MIGRATIONS
from policies.static import TrustedCaller
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, migrate

OWNER = "110105000100"  # the department that owns the adapter's data
DEPARTMENT_TOKEN = "department-token-0123456789abcdef"
COMMUNITY_TOKEN = "community-token-0123456789abcdef"
ALL_READ = ["alerts:read", "incidents:read", "resources:read"]


@dataclass
class DocumentServerState:
    """What a plain upstream HTTP server serves, how it answers, and what it was asked."""

    documents: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    fail_with: int | None = None
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)
    """(path, If-None-Match sent, status answered)"""

    def put(self, path: str, body: bytes, content_type: str = "application/xml") -> None:
        self.documents[path] = (body, content_type)

    def statuses(self, path: str) -> list[int]:
        return [status for p, _, status in self.requests if p == path]


def document_app(state: DocumentServerState) -> Starlette:
    """Serves ``state.documents`` with strong ETags; answers 304 to a matching If-None-Match."""

    async def serve(request: Request) -> Response:
        path = "/" + request.path_params["path"]
        sent = request.headers.get("if-none-match")
        if state.fail_with is not None:
            state.requests.append((path, sent, state.fail_with))
            return Response(b"upstream trouble", status_code=state.fail_with)
        if path not in state.documents:
            state.requests.append((path, sent, 404))
            return Response(b"not found", status_code=404)
        body, content_type = state.documents[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if sent == etag:
            state.requests.append((path, sent, 304))
            return Response(status_code=304, headers={"ETag": etag})
        state.requests.append((path, sent, 200))
        return Response(body, media_type=content_type, headers={"ETag": etag})

    return Starlette(routes=[Route("/{path:path}", serve)])


@pytest.fixture
def upstream(serve: Callable[..., ServerThread]) -> tuple[DocumentServerState, str]:
    """A document server on a free port: (its state, its base URL)."""
    state = DocumentServerState()
    server = serve(document_app(state))
    return state, server.url


def service_settings(database_url: str, **overrides: Any) -> AdapterServiceSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "adapter_id": "adapter-test",
        "adapter_name": "测试接入 Test adapter",
        "org_code": OWNER,
        "district": "110105",
        "trusted_callers": [
            TrustedCaller(
                token=DEPARTMENT_TOKEN,
                org=OWNER,
                org_kind=OrgKind.DEPARTMENT,
                scopes=ALL_READ,
                client_id="department",
            ),
            TrustedCaller(
                token=COMMUNITY_TOKEN,
                org="110105001001",
                org_kind=OrgKind.COMMUNITY,
                scopes=ALL_READ,
                client_id="community",
            ),
        ],
        **overrides,
    }
    return AdapterServiceSettings(**values)


@dataclass
class RunningAdapter:
    """An adapter service on a free port, and a database handle in the test's own loop."""

    url: str
    server: ServerThread
    db: Database
    department: GraphQLClient
    community: GraphQLClient
    anonymous: GraphQLClient

    async def close(self) -> None:
        for client in (self.department, self.community, self.anonymous):
            await client.aclose()
        await asyncio.to_thread(self.server.stop)
        await self.db.dispose()


@pytest.fixture(scope="module")
async def adapter_db(database: DatabaseUnderTest) -> AsyncIterator[DatabaseUnderTest]:
    """The module's database, built by the adapter migrations."""
    await migrate(MIGRATIONS, database.url)
    return database


async def start_adapter(
    database_url: str, adapter: Adapter, *, poll: bool = False, **overrides: Any
) -> RunningAdapter:
    """Serve ``adapter`` (polling only if ``poll``: tests poll in their own loop otherwise)."""
    settings = service_settings(database_url, **overrides)
    app = create_adapter_app(settings, adapter, httpx.AsyncClient(timeout=30.0), poll=poll)
    server = ServerThread(app).start()
    return RunningAdapter(
        url=server.url,
        server=server,
        db=Database(database_url),
        department=GraphQLClient(server.url, DEPARTMENT_TOKEN),
        community=GraphQLClient(server.url, COMMUNITY_TOKEN),
        anonymous=GraphQLClient(server.url, None),
    )
