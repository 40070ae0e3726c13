"""What the non-interference properties share: twin databases, random queries, paging to the end.

Twin databases of one community differ only in what the policy hides from a
neighbour and a public caller: hidden fields (volunteers' names and phones,
street addresses) hold other values, and copy 1 has extra records those callers
may not see at all (resources not shared). ``tests/node/test_noninterference.py``
asks a node, ``tests/hub/federation/test_noninterference.py`` the hub over two
nodes; both compare the answers byte for byte.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import strategies as st

from node.tables import TABLES
from schema.runtime.db import Database
from schema.store import service
from schema.store.specs import bind_specs

__all__ = [
    "CALLERS",
    "CURSOR_SECRET",
    "Query",
    "document",
    "fill",
    "pages",
    "queries",
]

SPECS = bind_specs(TABLES)
START = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
CURSOR_SECRET = secrets.token_urlsafe(32)  # twins sign cursors alike, as replicas would
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "Zhang Wei"]
ADDRESSES = ["永安里东街3号院", "建国门外大街1号", "光华路9号", "秀水街2号"]
SKILLS = ["急救", "first aid", "电工", "driver"]
#: The callers the properties compare for: a neighbouring community and a public app.
CALLERS = ("neighbour", "public")

Query = tuple[str, dict[str, Any], int, str, str]
"""(list field, where, page size, order, caller)."""


def _point(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "Point",
        "coordinates": [rng.uniform(116.40, 116.50), rng.uniform(39.88, 39.94)],
    }


COUNTS = (24, 16, 10)
"""How many resources, volunteers and shelters a community holds (before copy 1's extras)."""


def _records(
    rng: random.Random, counts: tuple[int, int, int]
) -> list[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    """(type, shared values, hidden values per copy, visible to the neighbour at all)."""
    resources, volunteers, shelters = counts
    records: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = []
    for i in range(resources):
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
    for i in range(volunteers):
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
    for i in range(shelters):
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


async def fill(url: str, copy: int, seed: int, counts: tuple[int, int, int] = COUNTS) -> None:
    """The community's records; ``copy`` picks the hidden values (and copy 1 has extras)."""
    rng = random.Random(seed)
    pick = random.Random(seed * 7 + copy)
    db = Database(url)
    try:
        async with db.transaction() as session:
            for n, (type_name, shared, hidden, visible) in enumerate(_records(rng, counts)):
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
queries: st.SearchStrategy[Query] = st.sampled_from(sorted(SELECTIONS)).flatmap(
    lambda field: st.tuples(
        st.just(field),
        filters[field],
        st.integers(1, 7),
        st.sampled_from(["CREATED_DESC", "CREATED_ASC", "UPDATED_DESC"]),
        st.sampled_from(CALLERS),
    )
)


def document(field: str) -> str:
    """The paged list query of ``field`` with every field the policy may hide or band."""
    filter_type, selection = SELECTIONS[field]
    return (
        f"query {field}($where: {filter_type}, $first: Int, $after: String,"
        f" $order: RecordOrder!) {{ {field}(where: $where, first: $first, after: $after,"
        f" orderBy: $order) {{ edges {{ cursor node {{ {selection} }} }}"
        " pageInfo { hasNextPage endCursor } } }"
    )


async def pages(url: str, token: str, query: Query) -> list[bytes]:
    """Every page of the answer to ``query``, as raw bytes, following the end cursor."""
    field, where, first, order, _ = query
    variables: dict[str, Any] = {"where": where, "first": first, "order": order}
    bodies: list[bytes] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        after = None
        for _ in range(60):
            response = await http.post(
                "/graphql",
                json={"query": document(field), "variables": {**variables, "after": after}},
                headers={"Authorization": f"Bearer {token}"},
            )
            bodies.append(response.content)
            page = (response.json().get("data") or {}).get(field)
            info = (page or {}).get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return bodies
            after = info["endCursor"]
    return bodies
