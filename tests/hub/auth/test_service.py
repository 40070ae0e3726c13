"""Client registration and secrets: bad input is refused with its code and nothing is written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.app import MIGRATIONS
from hub.auth import (
    SCOPES,
    ClientExists,
    ClientNotFound,
    InvalidClientField,
    UnknownScope,
    format_scopes,
    parse_scopes,
    service,
)
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, migrate


@pytest.fixture(scope="module")
async def db(database: DatabaseUnderTest) -> AsyncIterator[Database]:
    await migrate(MIGRATIONS, database.url)
    db = Database(database.url)
    yield db
    await db.dispose()


async def _count(db: Database) -> int:
    async with db.sessions() as session:
        return len(await service.list_clients(session))


def test_the_scope_list_is_the_designed_one() -> None:
    # The wire strings and their documented order (the ``scope`` claim is written in it).
    assert list(SCOPES) == [
        "incidents:read",
        "resources:read",
        "shelters:read",
        "volunteers:read",
        "pii:read",
        "risk:flag",
        "risk:verify",
        "aid:request",
        "aid:respond",
        "alerts:read",
        "alerts:publish",
        "emergency:declare",
        "audit:read",
        "admin",
        "records:write",
        "sitrep:read",
        "sitrep:write",
        "sitrep:submit",
        "risk:read",
        "sensors:write",
    ]
    assert parse_scopes("admin  pii:read") == {"admin", "pii:read"}
    assert format_scopes({"admin", "incidents:read"}) == "incidents:read admin"
    with pytest.raises(UnknownScope) as refused:
        parse_scopes("admin root")
    assert refused.value.extensions == {
        "code": "UNKNOWN_SCOPE",
        "field": "scopes",
        "scopes": ["root"],
    }


def test_secrets_are_salted_slow_hashes() -> None:
    first, second = service.hash_secret("s3cret"), service.hash_secret("s3cret")
    assert first != second  # per-hash salt
    assert first.startswith("scrypt$16384$8$1$")
    assert service.verify_secret("s3cret", first)
    assert not service.verify_secret("s3cret!", first)
    assert not service.verify_secret("s3cret", "plain$text")
    assert not service.verify_secret("s3cret", "")


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"scopes": "resources:read rule:the-world"}, UnknownScope, "UNKNOWN_SCOPE"),
        ({"org": "bad org!"}, InvalidClientField, "INVALID_CLIENT_FIELD"),
        ({"district": "1101"}, InvalidClientField, "INVALID_CLIENT_FIELD"),
        ({"district": None}, InvalidClientField, "INVALID_CLIENT_FIELD"),
        ({"client_id": "a:b"}, InvalidClientField, "INVALID_CLIENT_FIELD"),
    ],
)
async def test_bad_clients_are_refused_and_nothing_is_written(
    db: Database, changes: dict[str, object], error: type[Exception], code: str
) -> None:
    before = await _count(db)
    values: dict[str, object] = {
        "org": "110105001001",
        "org_kind": OrgKind.COMMUNITY,
        "district": "110105",
        "scopes": "resources:read",
        **changes,
    }
    with pytest.raises(error) as refused:
        async with db.transaction() as session:
            await service.create_client(session, **values)  # type: ignore[arg-type]
    assert refused.value.extensions["code"] == code  # type: ignore[attr-defined]
    assert await _count(db) == before


async def test_public_clients_need_no_district_and_ids_are_unique(db: Database) -> None:
    async with db.transaction() as session:
        client, secret = await service.create_client(
            session,
            org="public-web",
            org_kind=OrgKind.PUBLIC,
            district=None,
            scopes=["alerts:read"],
            client_id="public-web",
        )
    assert client.scope == "alerts:read"
    assert client.district is None
    with pytest.raises(ClientExists):
        async with db.transaction() as session:
            await service.create_client(
                session,
                org="public-web",
                org_kind=OrgKind.PUBLIC,
                district=None,
                scopes="alerts:read",
                client_id="public-web",
            )
    async with db.sessions() as session:
        stored = await service.get_client(session, "public-web")
    assert stored is not None
    assert service.verify_secret(secret, stored.secret_hash)


async def test_disabling_an_unknown_client_fails(db: Database) -> None:
    with pytest.raises(ClientNotFound):
        async with db.transaction() as session:
            await service.disable_client(session, "ghost")
