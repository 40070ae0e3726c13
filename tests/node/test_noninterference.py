"""Non-interference: what a caller receives depends only on what that caller may see.

Two nodes of the same community hold databases that differ only in what the
policy hides from a caller: hidden fields (volunteers' names and phones, street
addresses) hold other values, and one
database has extra records the caller may not see at all (resources not
shared). For random filters and page sizes, paging to the end, the caller gets
byte-identical answers from both: the same records, fields, cursors, page info
and errors. A filter can therefore never confirm a hidden value.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from node.tables import TABLES
from schema.enums import OrgKind
from schema.runtime.db import Database
from schema.store import service
from schema.store.specs import bind_specs
from tests.conftest import BACKENDS, ServerThread, _empty_database, migrate
from tests.node.conftest import NEIGHBOUR, ORG
from tests.node.issuer import TestIssuer

SPECS = bind_specs(TABLES)
START = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
SECRET = secrets.token_urlsafe(32)  # both nodes sign cursors alike, as replicas would
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "Zhang Wei"]
ADDRESSES = ["永安里东街3号院", "建国门外大街1号", "光华路9号", "秀水街2号"]
SKILLS = ["急救", "first aid", "电工", "driver"]


def _point(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "Point",
        "coordinates": [rng.uniform(116.40, 116.50), rng.uniform(39.88, 39.94)],
    }


def _seed(rng: random.Random) -> list[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    """(type, shared values, hidden values per copy, visible to the neighbour at all)."""
    records: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = []
    for i in range(24):
        shared = rng.random() < 0.7
        records.append(
            (
                "Resource",
                {
                    "kind": rng.choice(["portable_generator", "drinking_water"]),
                    "name": f"{rng.choice(['发电机', '饮用水', 'pump'])} {i}",
                    "quantity": 40,
                    "available": rng.choice([0, 3, 30]),
                    "unit": "台",
                    "shareable": shared,
                    "status": rng.choice(["available", "reserved"]),
                    "location": _point(rng),
                },
                {"address": ADDRESSES},
                shared,
            )
        )
    for i in range(16):
        records.append(
            (
                "Volunteer",
                {
                    "skills": rng.sample(SKILLS, 2),
                    "team": f"第{i % 3}队",
                    "availability": rng.choice(["available", "on_duty"]),
                },
                {"name": NAMES, "phone": ["13800000001", "13900000002", None]},
                True,
            )
        )
    for i in range(10):
        records.append(
            (
                "Shelter",
                {
                    "name": f"避难所 {i}",
                    "capacity": 200,
                    "accessible": rng.random() < 0.5,
                    "status": "open",
                    "location": _point(rng),
                },
                {
                    "address": ADDRESSES,
                },
                True,
            )
        )
    return records  # fmt: skip


async def _fill(url: str, copy: int, seed: int) -> None:
    """The community's records; ``copy`` picks the hidden values (and copy 1 has extras)."""
    rng = random.Random(seed)
    pick = random.Random(seed * 7 + copy)
    db = Database(url)
    try:
        async with db.transaction() as session:
            for n, (type_name, shared, hidden, visible) in enumerate(_seed(rng)):
                if not visible and copy == 0 and n % 2:
                    continue  # records the caller may not see exist only in copy 1
                spec = SPECS[type_name]
                values = {**shared, **{k: pick.choice(v) for k, v in hidden.items()}}
                record = spec.create.model_validate(values)
                columns = {name: getattr(record, name) for name in spec.create.model_fields}
                moment = START + timedelta(minutes=n // 3)  # ties, broken by id
                session.add(
                    spec.table(
                        id=f"r{n:03d}", version=1, created_at=moment, updated_at=moment,
                        **columns, **service.index_columns(spec, columns),
                    )
                )  # fmt: skip
    finally:
        await db.dispose()


@dataclass
class Twins:
    urls: tuple[str, str]
    tokens: dict[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
async def twins(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Twins]:
    issuer = TestIssuer()
    folder = tmp_path_factory.mktemp("twins")
    async with _empty_database(request.param, folder / "a") as a, \
            _empty_database(request.param, folder / "b") as b:  # fmt: skip
        servers = []
        for copy, database in enumerate((a, b)):
            await migrate(MIGRATIONS, database.url)
            await _fill(database.url, copy, seed=20260720)
            node = NodeSettings(
                database_url=database.url, org_code=ORG, org_name="永安里社区",
                district="110105", neighbours=[NEIGHBOUR], token_issuer=issuer.issuer,
                jwks_url=issuer.jwks_url, cursor_secret=SECRET,
            )  # fmt: skip
            servers.append(ServerThread(create_app(node)).start())
        scope = "resources:read volunteers:read shelters:read"
        tokens = {
            "neighbour": issuer.mint(org=NEIGHBOUR, aud=ORG, scope=scope),
            "public": issuer.mint(
                org="public-web", aud=ORG, org_kind=OrgKind.PUBLIC.value, scope=scope,
                district=None,
            ),
        }  # fmt: skip
        try:
            yield Twins((servers[0].url, servers[1].url), tokens)
        finally:
            for server in servers:
                await asyncio.to_thread(server.stop)
            issuer.stop()


SELECTIONS = {
    "resources": ("ResourceFilter", "id name kind available availableBand { label } status"
                  " shareable location { coordinates } address"),
    "volunteers": ("VolunteerFilter", "id name phone skills team availability"),
    "shelters": ("ShelterFilter", "id name capacity occupancy freeBedsBand { label } status"
                 " accessible address description location { coordinates }"),
}  # fmt: skip
texts = st.sampled_from(
    [*NAMES, *ADDRESSES, "张", "号院", "发电机", "pump 1", "避难所", "第1队", "13800000001", "2"]
)
boxes = st.builds(
    lambda w, s, dw, ds: {"west": w, "south": s, "east": w + dw, "north": s + ds},
    st.floats(116.38, 116.50), st.floats(39.86, 39.94), st.floats(0.0, 0.1), st.floats(0.0, 0.06),
)  # fmt: skip
near = st.builds(
    lambda lat, lon, r: {"lat": lat, "lon": lon, "radiusKm": r},
    st.floats(39.88, 39.94), st.floats(116.40, 116.50), st.floats(0.05, 5.0),
)  # fmt: skip
filters = {
    "resources": st.fixed_dictionaries({}, optional={
        "text": texts, "bbox": boxes, "near": near, "shareable": st.booleans(),
        "kinds": st.lists(st.sampled_from(["portable_generator", "drinking_water"]), max_size=2),
        "statuses": st.lists(st.sampled_from(["AVAILABLE", "RESERVED"]), max_size=2)}),
    "volunteers": st.fixed_dictionaries({}, optional={
        "text": texts, "skills": st.lists(st.sampled_from([*SKILLS, "急"]), max_size=2),
        "availabilities": st.lists(st.sampled_from(["AVAILABLE", "ON_DUTY"]), max_size=2)}),
    "shelters": st.fixed_dictionaries({}, optional={
        "text": texts, "bbox": boxes, "near": near, "accessible": st.booleans()}),
}  # fmt: skip
queries = st.sampled_from(sorted(SELECTIONS)).flatmap(
    lambda field: st.tuples(
        st.just(field),
        filters[field],
        st.integers(1, 7),
        st.sampled_from(["CREATED_DESC", "CREATED_ASC", "UPDATED_DESC"]),
        st.sampled_from(["neighbour", "public"]),
    )
)


async def _pages(url: str, token: str, query: str, variables: dict[str, Any]) -> list[bytes]:
    """Every page of the answer, as raw bytes, following the end cursor."""
    bodies: list[bytes] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        after = None
        for _ in range(60):
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": {**variables, "after": after}},
                headers={"Authorization": f"Bearer {token}"},
            )
            bodies.append(response.content)
            page = (response.json().get("data") or {}).get(query.split("(")[0].split()[-1])
            info = (page or {}).get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return bodies
            after = info["endCursor"]
    return bodies


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries)
async def test_answers_do_not_depend_on_what_the_caller_may_not_see(
    twins: Twins, query: tuple[str, dict[str, Any], int, str, str]
) -> None:
    field, where, first, order, who = query
    filter_type, selection = SELECTIONS[field]
    document = (
        f"query {field}($where: {filter_type}, $first: Int, $after: String,"
        f" $order: RecordOrder!) {{ {field}(where: $where, first: $first, after: $after,"
        f" orderBy: $order) {{ edges {{ cursor node {{ {selection} }} }}"
        " pageInfo { hasNextPage endCursor } } }"
    )
    variables = {"where": where, "first": first, "order": order}
    token = twins.tokens[who]
    one = await _pages(twins.urls[0], token, document, variables)
    other = await _pages(twins.urls[1], token, document, variables)
    assert one == other


async def test_the_twins_do_differ_and_the_caller_does_see_records(twins: Twins) -> None:
    # The property above is not vacuous: the copies differ, and callers see something.
    document = "{ resources(first: 500) { edges { node { id address } } } }"
    owner = {}
    for url in twins.urls:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            body = (
                await http.post(
                    "/graphql",
                    json={"query": document},
                    headers={"Authorization": f"Bearer {twins.tokens['neighbour']}"},
                )
            ).json()
        owner[url] = [e["node"] for e in body["data"]["resources"]["edges"]]
    a, b = owner.values()
    assert len(a) == len(b) > 5  # the shared resources
    assert all(node["address"] is None for node in a)  # addresses are hidden from neighbours
