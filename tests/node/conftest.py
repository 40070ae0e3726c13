"""A real node on a free port over a database its migrations built."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings, TrustedCaller
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, migrate
from tests.node.issuer import TestIssuer

ORG = "110105001001"
NEIGHBOUR = "110105001002"
STAFF_TOKEN = "staff-token-0123456789abcdef"
READER_TOKEN = "reader-token-0123456789abcdef"
NEIGHBOUR_TOKEN = "neighbour-token-0123456789abcdef"
# Scopes are necessary even for the owner's own staff: the policy reads nothing without them.
READ_SCOPES = [
    "incidents:read",
    "resources:read",
    "shelters:read",
    "volunteers:read",
    "pii:read",
    "alerts:read",
]


@dataclass
class RunningNode:
    url: str
    settings: NodeSettings
    staff: GraphQLClient
    reader: GraphQLClient  # own staff without the write scope
    neighbour: GraphQLClient  # another community's trusted client
    anonymous: GraphQLClient
    database: DatabaseUnderTest


def node_settings(database_url: str) -> NodeSettings:
    return NodeSettings(
        database_url=database_url,
        org_code=ORG,
        org_name="永安里社区",
        district="110105",
        neighbours=[NEIGHBOUR],
        max_body_bytes=64 * 1024,
        trusted_callers=[
            TrustedCaller(
                token=STAFF_TOKEN,
                org=ORG,
                scopes=["records:write", *READ_SCOPES, "audit:read"],
                client_id="staff",
            ),
            TrustedCaller(
                token=READER_TOKEN, org=ORG, scopes=["resources:read"], client_id="reader"
            ),
            TrustedCaller(
                token=NEIGHBOUR_TOKEN,
                org=NEIGHBOUR,
                scopes=["records:write"],
                client_id="neighbour",
            ),
        ],
    )


@pytest.fixture(scope="session")
def issuer() -> Iterator[TestIssuer]:
    """The test hub's token issuer, its JWKS served over HTTP."""
    running = TestIssuer()
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def node(database: DatabaseUnderTest, issuer: TestIssuer) -> AsyncIterator[RunningNode]:
    """A node serving over HTTP, its database built by the Alembic migrations.

    It takes the issuer's access tokens and, as development nodes may, static tokens.
    """
    await migrate(MIGRATIONS, database.url)
    settings = node_settings(database.url).model_copy(
        update={"token_issuer": issuer.issuer, "jwks_url": issuer.jwks_url}
    )
    server = ServerThread(create_app(settings)).start()
    clients = [
        GraphQLClient(server.url, t) for t in (STAFF_TOKEN, READER_TOKEN, NEIGHBOUR_TOKEN, None)
    ]
    try:
        yield RunningNode(server.url, settings, *clients, database=database)
    finally:
        for client in clients:
            await client.aclose()
        await threading_stop(server)


async def threading_stop(server: ServerThread) -> None:
    import asyncio

    await asyncio.to_thread(server.stop)
