"""Attacks on a node that takes only the hub's access tokens, each refused with its exact code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from policies.errors import PolicyError
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, migrate
from tests.node.issuer import ALL_READ_SCOPES, HUB_KEY, KID, TestIssuer
from tests.node.test_records import CREATE_RESOURCE, resource

ORG = "110105001001"
NEIGHBOUR_ORG = "110105001002"
RESOURCE_QUERY = "{ resources(first: 500) { edges { node { id } } } }"
NODE_QUERY = "query($id: ID!) { node(id: $id) { ... on Resource { id name } } }"
DISCLOSURES = """query($first: Int, $after: String) { disclosures(first: $first, after: $after) {
  edges { cursor node { seq action recordType count org orgKind clientId purpose decision
  owner prevHash hash } } pageInfo { hasNextPage endCursor } } }"""


@dataclass
class SecureNode:
    url: str
    database: DatabaseUnderTest
    issuer: TestIssuer
    staff: GraphQLClient
    neighbour: GraphQLClient


@pytest.fixture(scope="module")
async def secure(database: DatabaseUnderTest, issuer: TestIssuer) -> AsyncIterator[SecureNode]:
    await migrate(MIGRATIONS, database.url)
    settings = NodeSettings(
        database_url=database.url,
        org_code=ORG,
        district="110105",
        neighbours=[NEIGHBOUR_ORG],
        token_issuer=issuer.issuer,
        jwks_url=issuer.jwks_url,
    )
    server = ServerThread(create_app(settings)).start()
    staff = GraphQLClient(
        server.url,
        issuer.mint(org=ORG, aud=ORG, scope=f"records:write audit:read {ALL_READ_SCOPES}"),
    )
    neighbour = GraphQLClient(
        server.url,
        issuer.mint(org=NEIGHBOUR_ORG, aud=ORG, scope=f"records:write {ALL_READ_SCOPES}"),
    )
    try:
        yield SecureNode(server.url, database, issuer, staff, neighbour)
    finally:
        await staff.aclose()
        await neighbour.aclose()
        server.stop()


async def _count(node: SecureNode) -> int:
    return len((await node.staff.data(RESOURCE_QUERY))["resources"]["edges"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _hs256_with_public_key(issuer: TestIssuer) -> str:
    """The classic key-confusion token: HMAC keyed with the issuer's public key."""
    public_pem = HUB_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _segments(
        {"alg": "HS256", "typ": "at+jwt", "kid": KID}, issuer.claims(org=ORG, aud=ORG)
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _attacks(issuer: TestIssuer) -> list[tuple[str, str | None, str]]:
    now = int(time.time())
    return [
        ("missing token", None, "TOKEN_MISSING"),
        ("malformed token", "Bearer not-a-jwt", "TOKEN_MALFORMED"),
        (
            "alg none",
            "Bearer "
            + _segments({"alg": "none", "typ": "at+jwt", "kid": KID}, issuer.claims(org=ORG, aud=ORG))
            + ".",
            "TOKEN_ALG_NOT_ALLOWED",
        ),
        ("HS256 with the public key", f"Bearer {_hs256_with_public_key(issuer)}", "TOKEN_ALG_NOT_ALLOWED"),
        ("typ JWT", f"Bearer {issuer.mint(org=ORG, aud=ORG, headers={'typ': 'JWT'})}", "TOKEN_TYP_INVALID"),
        ("wrong iss", f"Bearer {issuer.mint(org=ORG, aud=ORG, iss='https://evil.example')}", "TOKEN_ISSUER_INVALID"),
        ("token for another node", f"Bearer {issuer.mint(org=ORG, aud=NEIGHBOUR_ORG)}", "TOKEN_AUDIENCE_INVALID"),
        ("expired", f"Bearer {issuer.mint(org=ORG, aud=ORG, exp=now - 3600, iat=now - 7200)}", "TOKEN_EXPIRED"),
        ("not yet valid", f"Bearer {issuer.mint(org=ORG, aud=ORG, nbf=now + 3600)}", "TOKEN_NOT_YET_VALID"),
        ("unknown kid", f"Bearer {issuer.mint(org=ORG, aud=ORG, headers={'kid': 'nope'})}", "TOKEN_KID_UNKNOWN"),
        (
            "signed by another key",
            f"Bearer {issuer.mint(org=ORG, aud=ORG, key=ec.generate_private_key(ec.SECP256R1()))}",
            "TOKEN_SIGNATURE_INVALID",
        ),
    ]  # fmt: skip


ATTACK_NAMES = [
    "missing token",
    "malformed token",
    "alg none",
    "HS256 with the public key",
    "typ JWT",
    "wrong iss",
    "token for another node",
    "expired",
    "not yet valid",
    "unknown kid",
    "signed by another key",
]


@pytest.mark.parametrize("attack", ATTACK_NAMES)
async def test_bad_token_is_refused_with_its_reason_and_nothing_written(
    secure: SecureNode, attack: str
) -> None:
    cases = {name: (header, reason) for name, header, reason in _attacks(secure.issuer)}
    assert set(cases) == set(ATTACK_NAMES)
    header, reason = cases[attack]
    before = await _count(secure)
    headers = {"Authorization": header} if header is not None else {}
    async with httpx.AsyncClient(base_url=secure.url, timeout=30.0) as http:
        response = await http.post(
            "/graphql",
            json={"query": CREATE_RESOURCE, "variables": {"input": resource()}},
            headers=headers,
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}
    assert await _count(secure) == before


async def test_another_organisations_record_by_id_is_not_found_and_audited(
    secure: SecureNode,
) -> None:
    created = await secure.staff.data(CREATE_RESOURCE, {"input": resource(shareable=False)})
    hidden_id = created["createResource"]["id"]
    unknown_id = f"Resource:{ORG}:{'0' * 32}"
    secure.neighbour.http.headers["X-Linli-Purpose"] = "relief-distribution"
    try:
        hidden = await secure.neighbour.post(NODE_QUERY, {"id": hidden_id})
        unknown = await secure.neighbour.post(NODE_QUERY, {"id": unknown_id})
    finally:
        del secure.neighbour.http.headers["X-Linli-Purpose"]
    assert hidden["data"] == {"node": None}
    assert hidden["errors"][0]["extensions"] == {"code": "NOT_FOUND", "type": "Resource"}
    assert hidden["errors"][0]["message"] == f"no Resource with id {hidden_id.split(':')[2]}"
    # Exactly as an id that does not exist: existence does not leak.
    assert unknown["errors"][0]["extensions"] == hidden["errors"][0]["extensions"]
    assert unknown["errors"][0]["message"] == f"no Resource with id {'0' * 32}"

    entries = [e["node"] for e in (await secure.staff.data(DISCLOSURES))["disclosures"]["edges"]]
    denied = [e for e in entries if e["action"] == "deny_by_id"]
    assert len(denied) == 1  # the unknown id is not a denial
    assert denied[0] | {"seq": 0, "prevHash": "", "hash": ""} == {
        "seq": 0,
        "action": "deny_by_id",
        "recordType": "Resource",
        "count": 1,
        "org": NEIGHBOUR_ORG,
        "orgKind": "community",
        "clientId": f"app-{NEIGHBOUR_ORG}",
        "purpose": "relief-distribution",
        "decision": {"ids": [hidden_id]},
        "owner": ORG,
        "prevHash": "",
        "hash": "",
    }


async def test_a_community_cannot_write_to_another_communitys_node(secure: SecureNode) -> None:
    before = await _count(secure)
    body = await secure.neighbour.post(CREATE_RESOURCE, {"input": resource(name="入侵")})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["message"] == "only this community's own staff may change its records"
    assert await _count(secure) == before


async def test_disclosures_are_audited_and_readable_only_by_own_auditors(
    secure: SecureNode,
) -> None:
    await secure.staff.data(CREATE_RESOURCE, {"input": resource(name="共享发电机")})
    first = [e["node"] for e in (await secure.staff.data(DISCLOSURES))["disclosures"]["edges"]]
    await secure.staff.data(RESOURCE_QUERY)  # own staff: not a disclosure
    secure.neighbour.http.headers["X-Linli-Purpose"] = "relief-distribution"
    try:
        body = await secure.neighbour.post(
            "{ resources(first: 500) { edges { node { id quantity availableBand { label } } } } }"
        )
    finally:
        del secure.neighbour.http.headers["X-Linli-Purpose"]
    shown = len(body["data"]["resources"]["edges"])
    assert shown >= 1
    assert all(e["node"]["quantity"] is None for e in body["data"]["resources"]["edges"])
    after = [e["node"] for e in (await secure.staff.data(DISCLOSURES))["disclosures"]["edges"]]
    assert len(after) == len(first) + 1  # one row for the request's one record type
    newest = after[0]
    assert newest["seq"] == max(e["seq"] for e in after)
    assert newest["prevHash"] == after[1]["hash"]
    assert (newest["action"], newest["recordType"], newest["count"], newest["org"]) == (
        "disclose",
        "Resource",
        shown,
        NEIGHBOUR_ORG,
    )
    assert newest["purpose"] == "relief-distribution"
    assert newest["decision"]["shown"] == shown
    assert newest["decision"]["withheld"] >= 1  # the private pump of the test above
    assert {"quantity", "available", "location"} <= set(newest["decision"]["approximated"])
    assert "address" in newest["decision"]["hidden"]

    # Relay paging walks the whole log newest first, without repeats.
    seqs: list[int] = []
    cursor = None
    while True:
        page = (await secure.staff.data(DISCLOSURES, {"first": 1, "after": cursor}))["disclosures"]
        seqs += [e["node"]["seq"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert seqs == sorted((e["seq"] for e in after), reverse=True)

    assert await secure.neighbour.error_code(DISCLOSURES) == "FORBIDDEN"
    no_scope = GraphQLClient(secure.url, secure.issuer.mint(org=ORG, aud=ORG))
    try:
        assert await no_scope.error_code(DISCLOSURES) == "FORBIDDEN"
    finally:
        await no_scope.aclose()


async def test_purpose_over_200_characters_is_refused(secure: SecureNode) -> None:
    async with httpx.AsyncClient(base_url=secure.url, timeout=30.0) as http:
        response = await http.post(
            "/graphql",
            json={"query": RESOURCE_QUERY},
            headers={
                "Authorization": secure.neighbour.http.headers["Authorization"],
                "X-Linli-Purpose": "x" * 201,
            },
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {
        "code": "STRING_TOO_LONG",
        "field": "X-Linli-Purpose",
    }


async def _linli_audit_verify(url: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as an operator runs it."""
    linli = Path(sys.executable).with_name("linli")
    return await asyncio.to_thread(
        subprocess.run,
        [str(linli), "audit", "verify", "--database-url", url],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


async def test_tampered_audit_row_is_named_by_linli_audit_verify(secure: SecureNode) -> None:
    # Make sure there are a few rows, then check the chain through the real console script.
    for _ in range(3):
        await secure.neighbour.data(RESOURCE_QUERY)
    intact = await _linli_audit_verify(secure.database.url)
    assert intact.returncode == 0, intact.stderr
    assert "chain intact:" in intact.stdout
    rows = int(intact.stdout.split("chain intact:")[1].split()[0])
    assert rows >= 3

    db = Database(secure.database.url)
    try:
        async with db.transaction() as session:
            # One byte of one stored row, changed behind the node's back.
            await session.execute(
                text("UPDATE audit_log SET purpose = 'X' || substr(purpose, 2) WHERE seq = 2")
            )
        broken = await _linli_audit_verify(secure.database.url)
        assert broken.returncode == 1
        assert "chain broken at seq 2:" in broken.stderr
        assert "the row's content does not match its hash" in broken.stderr
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE audit_log SET purpose = substr(purpose, 2) WHERE seq = 2")
            )
    finally:
        await db.dispose()


def _bad_policy(tmp_path: Path) -> Path:
    path = tmp_path / "owner.cedar"
    path.write_text(
        '@id("owner.share-everything")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource)\n'
        "when { resource.no_such_attribute == 1 };\n",
        encoding="utf-8",
    )
    return path


def test_an_invalid_policy_file_stops_create_app_naming_the_file(tmp_path: Path) -> None:
    path = _bad_policy(tmp_path)
    settings = NodeSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", policy_file=path
    )
    with pytest.raises(PolicyError) as caught:
        create_app(settings)
    assert caught.value.file == str(path)
    assert str(path) in str(caught.value)
    assert "does not validate against the schema" in caught.value.reason


def test_an_invalid_policy_file_stops_linli_node_serve(tmp_path: Path) -> None:
    path = _bad_policy(tmp_path)
    db = tmp_path / "n.db"
    linli = Path(sys.executable).with_name("linli")
    result = subprocess.run(
        [str(linli), "node", "serve", "--database-url", f"sqlite+aiosqlite:///{db}", "--port", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "LINLI_POLICY_FILE": str(path), "COLUMNS": "300"},
    )
    assert result.returncode == 1
    assert f"refusing to start: invalid policy file {path}" in result.stderr
    assert not db.exists()  # it stopped before migrating or serving anything
