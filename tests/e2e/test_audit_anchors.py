"""The audit chain anchored at the hub, over real servers: truncation and rewriting are found.

A real hub and a real node (``FlagRig``: each on its own database, the node
holding its hub client) run; the node reports its chain to the hub through
``POST /audit/anchor``, and ``linli audit verify`` is run on the node's
database against the hub. Then the chain is cut or rewritten the way a forger
with the database would, recomputing every later hash so that the chain alone
still verifies, and the command names the first missing or changed row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.base import HttpFetcher
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from adapters.service import create_adapter_app
from adapters.store import MIGRATIONS as ADAPTER_MIGRATIONS
from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.auth.service import create_client
from node.settings import TrustedCaller
from node.tables import AUDIT_LOG
from policies import Caller
from policies.anchors import anchor_mac
from policies.audit import GENESIS_HASH, AuditEntry, AuditRecord, append_many, row_hash
from policies.cli import audit_app
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.adapters.conftest import OWNER, service_settings
from tests.conftest import (
    BACKENDS,
    DatabaseUnderTest,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.federation.conftest import hub_over
from tests.node.flags.conftest import COMMUNITY, FlagRig, eventually, flag_rig

AUDITOR_TOKEN = "audit-staff-token-0123456789abcdef"
OUTSIDER_TOKEN = "audit-outsider-token-0123456789abcdef"
OUTSIDER = "110105009009"  # a community of the district, not a neighbour
READER = Caller(
    org="110105001002",
    org_kind=OrgKind.COMMUNITY,
    scopes=frozenset({"resources:read"}),
    client_id="neighbour-app",
    subject="neighbour-app",
)


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    """A real hub and a real node that reports its audit chain to it; an auditor's token."""

    async with flag_rig(request.param, tmp_path) as built:
        await built.start_hub()
        built.start_node(
            callers=[
                TrustedCaller(
                    token=AUDITOR_TOKEN, org=COMMUNITY, scopes=["audit:read", "risk:flag"],
                    client_id="auditor",
                ),
                TrustedCaller(
                    token=OUTSIDER_TOKEN, org=OUTSIDER, scopes=["incidents:read"],
                    client_id="outsider",
                ),
            ],
        )  # fmt: skip
        yield built


def _entries(count: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            action="disclose",
            owner=COMMUNITY,
            caller=READER,
            record_type="Resource",
            count=i,
            decision={"shown": i},
            purpose="互助",
        )
        for i in range(count)
    ]


async def _append(url: str, count: int) -> None:
    """``count`` rows at the end of the node's chain (as its disclosures would add them)."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            await append_many(session, AUDIT_LOG, _entries(count))
    finally:
        await db.dispose()


async def _anchor(rig: FlagRig) -> dict[str, Any]:
    """Ask the node to report its chain to the hub now; the hub's answer."""

    async def anchored() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{rig.node_url}/audit/anchor",
                headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"},
            )
        # Until the hub has read the node's well-known document, it knows no owner.
        return response.json() if response.status_code == 200 else None

    return await eventually(anchored, timeout_s=15)


def _verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit_app, ["verify", *args])
    return result.exit_code, " ".join(result.output.split())


async def verify(url: str, *args: str) -> tuple[int, str]:
    """``linli audit verify --database-url url ...``: exit code and output on one line."""
    return await asyncio.to_thread(_verify, "--database-url", url, *args)


async def _rows(url: str) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.sessions() as session:
            result = await session.execute(sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq))
            return [dict(row) for row in result.mappings()]
    finally:
        await db.dispose()


async def _rewrite(url: str, seq: int, **changes: Any) -> None:
    """Change row ``seq`` and recompute its hash and every later one, as a forger would."""
    rows = await _rows(url)
    prev_hash = GENESIS_HASH if seq == 1 else rows[seq - 2]["hash"]
    db = Database(url)
    try:
        async with db.transaction() as session:
            for row in rows[seq - 1 :]:
                fields = {**row, **(changes if row["seq"] == seq else {}), "prev_hash": prev_hash}
                fields["hash"] = prev_hash = row_hash(fields)
                await session.execute(
                    sa.update(AUDIT_LOG)
                    .where(AUDIT_LOG.c.seq == row["seq"])
                    .values({k: v for k, v in fields.items() if k != "seq"})
                )
    finally:
        await db.dispose()


async def test_truncating_the_last_50_rows_is_named(rig: FlagRig) -> None:
    await _append(rig.node_db_url, 120)
    answer = await _anchor(rig)
    assert answer["seq"] == 120
    assert answer["hash"] == (await _rows(rig.node_db_url))[-1]["hash"]
    assert answer["checkpoint"].count(".") == 2  # a compact JWS
    args = ("--hub-url", rig.hub_url, "--source", COMMUNITY)

    code, output = await verify(rig.node_db_url, *args)
    assert code == 0, output
    assert output == (
        f"chain intact: 120 rows; matches the anchor of {COMMUNITY} up to seq 120"
        " (120 rows witnessed, checkpoint signed by the hub)"
    )

    # The anchor was signed by the node (whoever holds its secret can tell), not made up.
    assert rig.node_settings is not None
    secret = rig.node_settings.audit_anchor_secret.get_secret_value()
    assert (await verify(rig.node_db_url, *args, "--anchor-secret", secret))[0] == 0
    code, output = await verify(rig.node_db_url, *args, "--anchor-secret", "another secret")
    assert (code, output) == (
        2,
        f"error: the hub's last anchor of {COMMUNITY} is not signed with this"
        " audit_anchor_secret (made up, or the secret changed since)",
    )

    await rig.node_sql("DELETE FROM audit_log WHERE seq > 70")
    # The chain alone cannot tell: what is left links up.
    assert (await verify(rig.node_db_url))[0] == 0
    code, output = await verify(rig.node_db_url, *args)
    assert code == 1
    assert output == (
        "chain broken at seq 71: missing: the chain ends at seq 70, but the hub anchored rows"
        " up to seq 120 (the last 50 rows were removed) (70 rows before it are intact)"
    )
    # Growing the chain back does not hide it: the new rows differ from the anchored ones.
    await _append(rig.node_db_url, 60)
    code, output = await verify(rig.node_db_url, *args)
    assert code == 1
    assert output.startswith("chain broken at seq 71: the row differs from what the hub anchored")


async def test_rewriting_a_row_and_every_later_hash_is_named(rig: FlagRig, tmp_path: Path) -> None:
    await _append(rig.node_db_url, 60)
    answer = await _anchor(rig)
    assert answer["seq"] == 60
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(answer), "utf-8")
    # The hub recorded the report in its own chain, which verifies.
    [anchor_row] = await rig.hub_sql(
        "SELECT owner, count, decision FROM audit_log WHERE action = 'anchor'"
    )
    assert (anchor_row[0], anchor_row[1]) == (COMMUNITY, 60)
    assert json.loads(anchor_row[2])["hash"] == answer["hash"]
    assert (await verify(rig.hub_db_url))[0] == 0

    await _rewrite(rig.node_db_url, 25, purpose="nothing to see", count=0)
    code, output = await verify(rig.node_db_url)
    assert (code, output) == (
        0,
        "chain intact: 60 rows (no anchor given: truncation cannot be ruled out)",
    )
    code, output = await verify(rig.node_db_url, "--hub-url", rig.hub_url, "--source", COMMUNITY)
    assert code == 1
    assert output.startswith("chain broken at seq 25: the row differs from what the hub anchored")
    assert output.endswith("(24 rows before it are intact)")
    # A saved checkpoint holds the head only: the change shows there.
    code, output = await verify(rig.node_db_url, "--checkpoint", str(saved))
    assert code == 1
    assert output.startswith("chain broken at seq 60: the row differs from what the hub anchored")

    # The forger cannot re-anchor the rewritten rows: the hub never replaces an anchor.
    rows = [(r["seq"], r["hash"]) for r in (await _rows(rig.node_db_url))[24:]]
    token = await _node_token(rig)
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{rig.hub_url}/audit/anchors",
            json={"source": COMMUNITY, "rows": rows, "mac": anchor_mac("k", COMMUNITY, rows)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    assert _error(response)["extensions"] == {"code": "ANCHOR_CONFLICT", "expected_seq": 61}
    witnessed = await rig.hub_sql("SELECT count(*) FROM audit_anchors")
    assert witnessed[0][0] == 60


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["errors"][0]
    return error


async def _node_token(rig: FlagRig) -> str:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{rig.hub_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(rig.client_id, rig.client_secret),
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def test_only_the_owner_anchors_and_bad_reports_write_nothing(rig: FlagRig) -> None:

    db = Database(rig.hub_db_url)
    try:
        async with db.transaction() as session:
            other, secret = await create_client(
                session, org=OUTSIDER, org_kind=OrgKind.COMMUNITY, district="110105",
                scopes="risk:flag",
            )  # fmt: skip
    finally:
        await db.dispose()
    await _append(rig.node_db_url, 1)
    await _anchor(rig)  # the hub knows the node's owner from here on
    rows = [(2, "a" * 64)]
    report = {"source": COMMUNITY, "rows": rows, "mac": anchor_mac("k", COMMUNITY, rows)}
    async with httpx.AsyncClient(timeout=30.0) as http:
        token = (
            await http.post(
                f"{rig.hub_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(other.client_id, secret),
            )
        ).json()["access_token"]
        own = await _node_token(rig)
        refused = await http.post(
            f"{rig.hub_url}/audit/anchors",
            json=report,
            headers={"Authorization": f"Bearer {token}"},
        )
        gap = await http.post(
            f"{rig.hub_url}/audit/anchors",
            json={**report, "rows": [(2, "a" * 64), (4, "b" * 64)]},
            headers={"Authorization": f"Bearer {own}"},
        )
        unknown = await http.post(
            f"{rig.hub_url}/audit/anchors",
            json={**report, "source": "no-such-source"},
            headers={"Authorization": f"Bearer {own}"},
        )
        anonymous = await http.post(f"{rig.hub_url}/audit/anchors", json=report)
    assert (refused.status_code, _error(refused)["extensions"]["code"]) == (403, "FORBIDDEN")
    assert gap.status_code == 400
    assert _error(gap)["message"].endswith("rows must have consecutive seq numbers from 1 up")
    assert (unknown.status_code, _error(unknown)["extensions"]["code"]) == (404, "NOT_FOUND")
    assert anonymous.status_code == 401
    # Only the node's own report of its first row is there.
    assert await rig.hub_sql("SELECT count(*) FROM audit_anchors") == [(1,)]
    assert await rig.hub_sql("SELECT count(*) FROM audit_log WHERE action = 'anchor'") == [(1,)]


WITHHELD_READ = "{ riskFlags(first: 5) { edges { node { id } } pageInfo { hasNextPage } } }"


async def test_withheld_and_refused_reads_leave_audit_rows(rig: FlagRig) -> None:
    await rig.raise_flags(2)
    outsider = rig.client(OUTSIDER_TOKEN)
    answer = await outsider.post(WITHHELD_READ)
    assert answer["data"]["riskFlags"] == {"edges": [], "pageInfo": {"hasNextPage": False}}
    refused = await outsider.post("{ disclosures { edges { node { seq } } } }")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    rows = [r for r in await _rows(rig.node_db_url) if r["org"] == OUTSIDER]
    assert [(r["action"], r["record_type"], r["count"]) for r in rows] == [
        ("withhold", "RiskFlag", 2),
        ("refuse", None, 1),
    ]
    assert json.loads(rows[0]["decision"]) == {"code": "WITHHELD_BY_POLICY", "withheld": 2}
    assert json.loads(rows[1]["decision"]) == {"codes": ["FORBIDDEN"], "paths": ["disclosures"]}
    assert rows[0]["client_id"] == "outsider"
    assert (await verify(rig.node_db_url))[0] == 0


async def test_verify_on_an_adapter_database_and_clear_errors(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> None:

    adapter_db = fresh_database
    await migrate(ADAPTER_MIGRATIONS, adapter_db.url)
    db = Database(adapter_db.url)
    try:
        async with db.transaction() as session:
            records: list[AuditRecord] = await append_many(session, AUDIT_LOG, _entries(3))
    finally:
        await db.dispose()
    assert await verify(adapter_db.url) == (
        0,
        "chain intact: 3 rows (no anchor given: truncation cannot be ruled out)",
    )
    db = Database(adapter_db.url)
    try:
        async with db.transaction() as session:
            await session.execute(sa.update(AUDIT_LOG).where(AUDIT_LOG.c.seq == 2).values(count=99))
    finally:
        await db.dispose()
    code, output = await verify(adapter_db.url)
    assert (code, output) == (
        1,
        "chain broken at seq 2: the row's content does not match its hash"
        " (1 rows before it are intact)",
    )
    assert records[0].seq == 1

    missing = tmp_path / "missing.db"
    assert await verify(f"sqlite+aiosqlite:///{missing}") == (
        2,
        f"error: no database file at {missing}",
    )
    assert not missing.exists()  # nothing created by accident
    assert await verify("not a url") == (2, "error: 'not a url' is not a database URL")
    empty = tmp_path / "other.db"
    await _create_unrelated_sqlite(empty)
    code, output = await verify(f"sqlite+aiosqlite:///{empty}")
    assert (code, output) == (
        2,
        f"error: no audit_log table at sqlite+aiosqlite:///{empty} (not a Linli hub, node or"
        " adapter database, or not migrated)",
    )
    code, output = await verify(
        f"sqlite+aiosqlite:///{empty}", "--hub-url", "http://127.0.0.1:9", "--source", "x"
    )
    assert code == 2
    assert output.startswith("error: cannot reach the hub at http://127.0.0.1:9: ConnectError")


async def _create_unrelated_sqlite(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction() as session:
            await session.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    finally:
        await db.dispose()


async def test_the_node_reports_new_rows_by_itself(rig: FlagRig) -> None:
    await rig.stop_node()
    rig.start_node(audit_anchor_s=0.2)
    await _append(rig.node_db_url, 1500)  # more than one report holds

    async def witnessed() -> int:
        rows = await rig.hub_sql("SELECT count(*) FROM audit_anchors")
        return int(rows[0][0]) if rows[0][0] == 1500 else 0

    assert await eventually(witnessed, timeout_s=15) == 1500
    reports = await rig.hub_sql("SELECT count FROM audit_log WHERE action = 'anchor' ORDER BY seq")
    assert [r[0] for r in reports] == [1000, 500]
    code, output = await verify(rig.node_db_url, "--hub-url", rig.hub_url, "--source", COMMUNITY)
    assert (code, output) == (
        0,
        f"chain intact: 1500 rows; matches the anchor of {COMMUNITY} up to seq 1500"
        " (1500 rows witnessed, checkpoint signed by the hub)",
    )


async def test_an_adapter_service_anchors_its_chain_and_verify_names_a_cut(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> None:

    await migrate(HUB_MIGRATIONS, fresh_database.url)
    hub_db = Database(fresh_database.url)
    try:
        async with hub_db.transaction() as session:
            client, secret = await create_client(
                session, org=OWNER, org_kind=OrgKind.DEPARTMENT, district="110105",
                scopes="alerts:publish",
            )  # fmt: skip
    finally:
        await hub_db.dispose()
    port = free_port()
    hub = await hub_over(
        fresh_database.url, tmp_path, {"adapter-cap-1": f"http://127.0.0.1:{port}"}
    )
    async with _empty_database(fresh_database.backend, tmp_path / "adapter") as adapter_db:
        await migrate(ADAPTER_MIGRATIONS, adapter_db.url)
        http = httpx.AsyncClient(timeout=30.0)
        adapter = CapAdapter(
            CapSettings(sources=["http://127.0.0.1:9/feed.atom"]),
            HttpFetcher(http, timeout_s=1, max_bytes=1 << 20),
        )
        settings = service_settings(
            adapter_db.url,
            adapter_id="adapter-cap-1",
            hub_url=hub.url,
            hub_client_id=client.client_id,
            hub_client_secret=secret,
            trusted_callers=[
                TrustedCaller(
                    token=AUDITOR_TOKEN, org=OWNER, org_kind=OrgKind.DEPARTMENT,
                    scopes=["audit:read"], client_id="auditor",
                )
            ],
        )  # fmt: skip
        server = ServerThread(create_adapter_app(settings, adapter, http, poll=False), port)
        await asyncio.to_thread(server.start)
        try:
            await _append(adapter_db.url, 30)

            async def anchored() -> dict[str, Any] | None:
                response = await http.post(
                    f"{server.url}/audit/anchor",
                    headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"},
                )
                return response.json() if response.status_code == 200 else None

            assert (await eventually(anchored, timeout_s=15))["seq"] == 30
            args = ("--hub-url", hub.url, "--source", "adapter-cap-1")
            assert (await verify(adapter_db.url, *args))[0] == 0
            db = Database(adapter_db.url)
            try:
                async with db.transaction() as session:
                    await session.execute(sa.delete(AUDIT_LOG).where(AUDIT_LOG.c.seq > 20))
            finally:
                await db.dispose()
            code, output = await verify(adapter_db.url, *args)
            assert code == 1
            assert output.startswith(
                "chain broken at seq 21: missing: the chain ends at seq 20, but the hub"
                " anchored rows up to seq 30"
            )
        finally:
            await asyncio.to_thread(server.stop)
            await http.aclose()
            await hub.stop()
