"""Random GraphQL against a real node and a real hub: no input answers 5xx or ``INTERNAL``.

Both servers run over databases their migrations built, the hub federating the node.
Queries and mutations are generated from each server's own schema, read by introspection
(hypothesis-graphql), and sent over HTTP with tokens of a few kinds; so are documents that
declare every argument of a root field as a variable, with random JSON for the variables.
The example budget is fixed and the draws are derandomized, so every run sends the same
requests; each bug the fuzzer found has its own plain regression test next to its code.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from schema.enums import OrgKind
from schema.scopes import Scope
from tests.conftest import (
    BACKENDS,
    GraphQLClient,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.federation.conftest import RunningHub, hub_over
from tests.node.conftest import node_settings
from tests.node.flags.conftest import RAISE, flag_input

COMMUNITY = "110105001001"
DEPARTMENT = "110105400001"
PUBLIC = "public-web"
EVERY_SCOPE = " ".join(Scope)
#: Examples per server and backend (a fixed budget: the draws are derandomized).
EXAMPLES = 120

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
Request = tuple[str, dict[str, Any]]
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), None])
DATETIMES = st.one_of(
    st.datetimes(timezones=ZONES).map(lambda at: at.isoformat()), st.text(max_size=30)
)

#: Literals a Float argument takes that no JSON body can carry on to a source.
EXTREME_NUMBERS: list[graphql.ValueNode] = [
    *(graphql.FloatValueNode(value=v) for v in ("1e400", "-1e400", "1e-400")),
    graphql.IntValueNode(value="1" + "0" * 400),
]
SCALAR_JSON: dict[str, st.SearchStrategy[Any]] = {
    "Int": st.integers(),
    "Float": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
    "String": st.text(),
    "ID": st.text(max_size=60),
    "Boolean": st.booleans(),
    "DateTime": DATETIMES,
    "JSON": JSON,
}


@dataclass
class Target:
    """One server under fuzz: its URL, its schema as it introspects, tokens by kind, record ids."""

    url: str
    schema: graphql.GraphQLSchema = field(repr=False)
    tokens: list[tuple[str, str | None]] = field(repr=False)
    ids: list[str] = field(repr=False)

    @functools.cached_property
    def requests(self) -> st.SearchStrategy[Request]:
        """What to send it (built once: hypothesis-graphql walks the whole schema)."""
        return requests_for(self)


@dataclass
class FuzzedDistrict:
    node: Target
    hub: Target


async def introspected(url: str, token: str | None) -> graphql.GraphQLSchema:
    """The schema a server describes over HTTP (introspection is on in development)."""
    client = GraphQLClient(url, token)
    try:
        answer = await client.data(graphql.get_introspection_query())
    finally:
        await client.aclose()
    return graphql.build_client_schema(answer)  # type: ignore[arg-type]


async def seed(url: str, token: str) -> list[str]:
    """A few records of the community, so lists, masks and ids have something to work on."""
    staff = GraphQLClient(url, token)
    ids = []
    try:
        for n in (1, 2):
            created = await staff.data(
                "mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }",
                {"i": {"kind": "portable_generator", "name": f"发电机 {n}", "quantity": 5 * n,
                       "available": n, "unit": "台", "address": f"某街{n}号",
                       "location": {"coordinates": [116.44123, 39.90871]}}},
            )  # fmt: skip
            raised = await staff.data(RAISE, {"i": flag_input(n)})
            ids += [created["createResource"]["id"], raised["raiseRiskFlag"]["id"]]
    finally:
        await staff.aclose()
    return ids


@pytest.fixture(scope="module", params=BACKENDS)
async def district(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FuzzedDistrict]:
    """A hub federating one community node, each on its own database of one backend."""
    folder = tmp_path_factory.mktemp("fuzz")
    async with (
        _empty_database(request.param, folder / "hub") as hub_db,
        _empty_database(request.param, folder / "node") as node_db,
    ):
        await migrate(HUB_MIGRATIONS, hub_db.url)
        await migrate(NODE_MIGRATIONS, node_db.url)
        node_port = free_port()
        hub = await hub_over(
            hub_db.url,
            folder,
            {COMMUNITY: f"http://127.0.0.1:{node_port}"},
            access_token_ttl_s=3600,
        )
        settings = node_settings(node_db.url).model_copy(
            update={
                "token_issuer": hub.settings.issuer,
                "jwks_url": f"{hub.url}/.well-known/jwks.json",
                "trusted_callers": [],
            }
        )
        node = ServerThread(create_node(settings), node_port).start()
        try:
            yield await _targets(hub, node)
        finally:
            await asyncio.to_thread(node.stop)
            await hub.stop()


async def _targets(hub: RunningHub, node: ServerThread) -> FuzzedDistrict:
    async def token(org: str, kind: OrgKind, resource: str | None) -> str:
        return await hub.client_token(org=org, kind=kind, scopes=EVERY_SCOPE, resource=resource)

    # Hypothesis leans to the first of a list: the callers who reach the most code come first.
    node_tokens = [
        ("staff", await token(COMMUNITY, OrgKind.COMMUNITY, COMMUNITY)),
        ("department", await token(DEPARTMENT, OrgKind.DEPARTMENT, COMMUNITY)),
        ("public", await token(PUBLIC, OrgKind.PUBLIC, COMMUNITY)),
        ("anonymous", None),
    ]
    hub_tokens = [
        ("department", await token(DEPARTMENT, OrgKind.DEPARTMENT, None)),
        ("community", await token(COMMUNITY, OrgKind.COMMUNITY, None)),
        ("public", await token(PUBLIC, OrgKind.PUBLIC, None)),
        ("anonymous", None),
    ]
    ids = await seed(node.url, str(node_tokens[0][1]))
    return FuzzedDistrict(
        node=Target(node.url, await introspected(node.url, node_tokens[0][1]), node_tokens, ids),
        hub=Target(hub.url, await introspected(hub.url, hub_tokens[0][1]), hub_tokens, ids),
    )


def json_for(
    type_: graphql.GraphQLInputType, leaves: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """JSON shaped like ``type_`` (null where it is nullable), ``leaves`` for its scalars."""
    if isinstance(type_, graphql.GraphQLNonNull):
        return _shaped(type_.of_type, leaves)
    return st.none() | _shaped(type_, leaves)


def _shaped(
    type_: graphql.GraphQLInputType, leaves: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    if isinstance(type_, graphql.GraphQLList):
        item = type_.of_type
        return st.lists(_later(item, leaves), max_size=3)
    if isinstance(type_, graphql.GraphQLInputObjectType):
        # Deferred: input types may hold themselves (filters of filters).
        fields = {n: _later(f.type, leaves) for n, f in type_.fields.items()}
        required = {n for n, f in type_.fields.items() if graphql.is_required_input_field(f)}
        return st.fixed_dictionaries(
            {n: fields[n] for n in required},
            optional={n: v for n, v in fields.items() if n not in required},
        )
    if isinstance(type_, graphql.GraphQLEnumType):
        return st.sampled_from(sorted(type_.values)) | st.text(max_size=10)
    assert isinstance(type_, graphql.GraphQLScalarType)
    return leaves.get(type_.name, JSON)


def _later(
    type_: graphql.GraphQLInputType, leaves: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: json_for(type_, leaves))


def with_variables(target: Target, root: graphql.GraphQLObjectType) -> st.SearchStrategy[Request]:
    """One root field, every argument a declared variable; JSON of the declared shape for them,
    with any JSON at the leaves (``wild``) or in place of a whole value now and then."""
    operation = "mutation" if root is target.schema.mutation_type else "query"
    tame = {**SCALAR_JSON, "ID": ids(target)}
    wild = {name: leaf | JSON for name, leaf in tame.items()}

    def document(name: str) -> st.SearchStrategy[Request]:
        field = root.fields[name]
        arguments = sorted(field.args.items())
        declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in arguments)
        passed = ", ".join(f"{arg}: ${arg}" for arg, _ in arguments)
        named = graphql.get_named_type(field.type)
        selection = " { __typename }" if graphql.is_composite_type(named) else ""
        text = (
            f"{operation}{f'({declared})' if declared else ''}"
            f" {{ {name}{f'({passed})' if passed else ''}{selection} }}"
        )

        def shaped(leaves: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
            return st.fixed_dictionaries({a: json_for(spec.type, leaves) for a, spec in arguments})

        anything = st.dictionaries(st.sampled_from([a for a, _ in arguments] or ["x"]), JSON)
        values = st.sampled_from([tame, wild]).flatmap(shaped) | anything
        return st.tuples(st.just(text), values)

    return st.sampled_from(sorted(root.fields)).flatmap(document)


def ids(target: Target) -> st.SearchStrategy[str]:
    """Ids of records that exist, and any text."""
    return st.sampled_from(target.ids) | st.text(max_size=60)


def requests_for(target: Target) -> st.SearchStrategy[Request]:
    """Generated documents of one root field each, and one-field documents with variables."""
    literals: dict[str, st.SearchStrategy[Any]] = {
        "ID": ids(target).map(nodes.String),
        "Float": st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float)
        | st.sampled_from(EXTREME_NUMBERS),
        "DateTime": DATETIMES.map(nodes.String),
        "JSON": st.text(max_size=20).map(nodes.String) | st.integers().map(nodes.Int),
    }
    scalars = {name: s for name, s in literals.items() if name in target.schema.type_map}
    no_variables: dict[str, Any] = {}
    found: list[st.SearchStrategy[Request]] = []
    for generate, root in (
        (queries, target.schema.query_type),
        (mutations, target.schema.mutation_type),
    ):
        if root is not None:
            # One root field a document: smaller documents are drawn twice as fast, and an
            # error in one field does not hide what another would have done.
            documents = st.one_of(
                [
                    generate(target.schema, fields=[name], custom_scalars=scalars)
                    for name in root.fields
                ]
            )
            found += [documents.map(lambda q: (q, no_variables)), with_variables(target, root)]
    return st.one_of(found)


def failures(response: httpx.Response) -> list[str]:
    """What in an answer says the server failed rather than refused: 5xx, INTERNAL, no code."""
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:500]}"]
    try:
        body = response.json()
    except ValueError:
        return [f"HTTP {response.status_code}, not JSON: {response.text[:500]}"]
    found = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        # The hub names a source's failure in a SOURCE_ERROR's message: "... (INTERNAL)"
        # for the source's own code, "the source answered HTTP 5xx" for its status.
        message = str(error.get("message"))
        if code in (None, "INTERNAL") or "(INTERNAL)" in message or "answered HTTP 5" in message:
            found.append(f"HTTP {response.status_code}, code {code}: {error}")
    return found


async def send(target: Target, data: st.DataObject) -> tuple[str, Request, httpx.Response]:
    """Draw a request and a caller, and send it."""
    query, variables = data.draw(target.requests, label="request")
    who, token = data.draw(st.sampled_from(target.tokens), label="caller")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    return who, (query, variables), response


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(data=st.data())
async def test_no_request_makes_the_node_fail(
    district: FuzzedDistrict, data: st.DataObject
) -> None:
    who, request, response = await send(district.node, data)
    failed = failures(response)
    assert not failed, (who, request, failed)


@FUZZ
@given(data=st.data())
async def test_no_request_makes_the_hub_fail(district: FuzzedDistrict, data: st.DataObject) -> None:
    who, request, response = await send(district.hub, data)
    failed = failures(response)
    assert not failed, (who, request, failed)


async def test_the_fuzzing_callers_are_who_they_claim(district: FuzzedDistrict) -> None:
    # Not vacuous: every token but the anonymous one gets past authentication, and the
    # hub reaches the node's records, so the fuzz tests above reach the resolvers.
    query = "query ($id: ID!) { node(id: $id) { ... on Resource { id } } }"
    seeded = {"id": district.node.ids[0]}
    for target in (district.node, district.hub):
        for who, token in target.tokens:
            client = GraphQLClient(target.url, token)
            try:
                body = await client.post(query, seeded)
            finally:
                await client.aclose()
            if token is None:
                assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            elif who != "public":  # the owner's staff and a department see its resources
                assert body.get("data") == {"node": seeded}, (who, body)
            else:
                assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", (who, body)
