"""The adapter service speaks the node protocol: well-known, token checks, readiness, migrations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.base import (
    AdapterHealth,
    AdapterStatus,
    HttpFetcher,
    PollLoop,
    PollReport,
    Problem,
)
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from adapters.errors import UpstreamUnavailable
from adapters.service import create_adapter_app
from schema.runtime.retry import backoff_s
from tests.adapters.conftest import DocumentServerState, service_settings, start_adapter
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread

ISSUER = "https://hub.linli.test"
KEY = ec.generate_private_key(ec.SECP256R1())
KID = "hub-key-1"


def jwks_app() -> Starlette:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True)

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "ES256"}]})

    return Starlette(routes=[Route("/jwks.json", jwks)])


def token(audience: str, **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {
        "iss": ISSUER, "sub": "dept-user", "aud": audience, "exp": now + 300, "iat": now,
        "jti": f"t-{now}-{audience}", "client_id": "dept-app", "scope": "alerts:read",
        "org": "110105000100", "org_kind": "department", "district": "110105", **claims,
    }  # fmt: skip
    return jwt.encode(payload, KEY, algorithm="ES256", headers={"kid": KID, "typ": "at+jwt"})


ALERTS = "{ alerts(first: 5) { edges { node { identifier } } } }"


async def test_token_checks_well_known_and_readiness(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    serve: Callable[..., ServerThread],
) -> None:
    state, base = upstream
    state.fail_with = 500  # the upstream is down from the start
    issuer = serve(jwks_app())
    http = httpx.AsyncClient(timeout=30.0)
    adapter = CapAdapter(
        CapSettings(sources=[f"{base}/feed.atom"], interval_s=0.1),
        HttpFetcher(http, timeout_s=2, max_bytes=1 << 20),
    )
    settings = service_settings(
        adapter_db.url,
        adapter_id="adapter-cap-1",
        token_issuer=ISSUER,
        jwks_url=f"{issuer.url}/jwks.json",
    )
    server = serve(create_adapter_app(settings, adapter, http, poll=True))
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as client:
        # Tokens: missing, meant for another source, and the right one.
        missing = await client.post("/graphql", json={"query": ALERTS})
        assert missing.status_code == 401
        assert missing.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert missing.json()["errors"][0]["extensions"]["reason"] == "TOKEN_MISSING"
        foreign = GraphQLClient(server.url, token("110105001001"))
        response = await foreign.http.post("/graphql", json={"query": ALERTS})
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.json()["errors"][0]["extensions"]["reason"] == "TOKEN_AUDIENCE_INVALID"
        await foreign.aclose()
        static = GraphQLClient(server.url, "department-token-0123456789abcdef")
        assert (await static.http.post("/graphql", json={"query": ALERTS})).status_code == 401
        await static.aclose()
        own = GraphQLClient(server.url, token("adapter-cap-1"))
        assert await own.data(ALERTS) == {"alerts": {"edges": []}}
        # No mutations: writes come only from the poller.
        body = await own.post("mutation { createAlert { id } }")
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        await own.aclose()

        # The upstream is down: the well-known document and /readyz say so, with the error.
        for _ in range(100):
            known = (await client.get("/.well-known/linli-node")).json()
            if known["adapter"]["last_error"]["code"] == "UPSTREAM_UNAVAILABLE":
                break
            await asyncio.sleep(0.05)
        assert known["kind"] == "adapter"
        assert known["id"] == "adapter-cap-1"
        assert known["capabilities"] == ["alerts"]
        assert known["adapter"]["status"] == "down"
        assert known["adapter"]["last_error"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert known["adapter"]["since"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "database": True, "migrations": True, "database_writable": True, "upstream": False
        }  # fmt: skip
        metrics = await client.get("/metrics")
        assert "linli_http_requests_total" in metrics.text

        # It recovers when the upstream does (backoff starts at a fraction of a second).
        state.fail_with = None
        state.put("/feed.atom", b'<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id></feed>')
        for _ in range(200):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        known = (await client.get("/.well-known/linli-node")).json()
        assert known["adapter"]["status"] == "ok"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    # PollLoop backs off with the one backoff of the project (schema.runtime.retry).
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (40, 30.0)]:
        delays = {backoff_s(failures, base_s=1.0, max_s=30.0) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, delays)
        assert len(delays) > 1  # jittered, not a fixed step


def test_status_moves_between_ok_degraded_and_down() -> None:
    status = AdapterStatus("x", down_after=3)
    assert status.health is AdapterHealth.DOWN  # nothing polled yet
    status.succeeded()
    assert status.health is AdapterHealth.OK
    assert status.last_success_at is not None
    status.succeeded([Problem("doc.xml", "CAP_INVALID", "bad")])
    assert status.health is AdapterHealth.DEGRADED
    assert status.as_dict()["problems"] == [
        {"where": "doc.xml", "code": "CAP_INVALID", "reason": "bad"}
    ]
    since = status.since
    for _ in range(2):
        status.failed(UpstreamUnavailable("refused"))
    assert status.health is AdapterHealth.DEGRADED
    assert status.since == since
    status.failed(UpstreamUnavailable("refused"))
    assert status.health is AdapterHealth.DOWN
    assert status.last_error is not None
    assert status.last_error["code"] == "UPSTREAM_UNAVAILABLE"


async def test_an_unchanged_upstream_keeps_the_problems_of_its_last_import() -> None:
    bad = Problem("库存导出.csv:4", "INVENTORY_BAD_NUMBER", "quantity '两台' is not a number")
    reports = iter([PollReport(created=3, problems=(bad,)), PollReport(not_modified=True)])

    async def poll() -> PollReport:
        return next(reports)

    loop = PollLoop("inventory", poll, interval_s=1.0, timeout_s=1.0)
    for _ in range(2):
        assert await loop.poll_once() is not None
        assert loop.status.health is AdapterHealth.DEGRADED
        assert loop.status.problems == [bad]


async def test_start_adapter_helper_serves_only_its_capabilities(
    adapter_db: DatabaseUnderTest,
) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        adapter = CapAdapter(CapSettings(), HttpFetcher(http, timeout_s=1, max_bytes=1024))
        service = await start_adapter(adapter_db.url, adapter)
        try:
            body = await service.department.post("{ incidents { edges { node { id } } } }")
            assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        finally:
            await service.close()
