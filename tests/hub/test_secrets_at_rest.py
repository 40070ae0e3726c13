"""The hub's signing keys and webhook secrets at rest: sealed, readable after a restart, rotatable."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from hub import cli
from hub.app import MIGRATIONS
from hub.auth.keys import KeyRing
from hub.flags import webhooks
from hub.sealed import SEALED_PREFIX, SealedSecretError, Sealer, new_key
from hub.secrets_at_rest import check_secrets, secrets_lifecycle
from hub.settings import HubSettings
from policies.caller import Caller
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, free_port, migrate
from tests.hub.flags.conftest import DEPT_GAS, FlagsHub, Receiver, eventually

LINLI = Path(sys.executable).with_name("linli")


async def _raw(url: str) -> tuple[list[str], list[str]]:
    """The stored values exactly as the database holds them (JSON as its text)."""
    db = Database(url)
    try:
        async with db.sessions() as session:
            keys = await session.execute(
                sa.text("SELECT CAST(private_jwk AS TEXT) FROM signing_keys ORDER BY kid")
            )
            hooks = await session.execute(sa.text("SELECT secret FROM flag_webhooks ORDER BY id"))
            return [str(v) for v in keys.scalars()], [str(v) for v in hooks.scalars()]
    finally:
        await db.dispose()


def _opened(key: str, raw_jwk: str) -> dict[str, Any]:
    """What a raw signing-key row holds, opened with ``key`` alone (no hub code)."""
    token = json.loads(raw_jwk).removeprefix(SEALED_PREFIX)
    opened: dict[str, Any] = json.loads(Fernet(key).decrypt(token))
    return opened


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


async def _jwks_accepts(hub: FlagsHub, token: str, issuer: str) -> dict[str, Any]:
    jwks = (await hub.http.get(f"{hub.url}/.well-known/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[_kid(token)]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        issuer=issuer,
        options={"verify_aud": False},
    )
    return claims


async def test_stored_secrets_are_ciphertext_and_work_after_a_restart(
    start_flags_hub: Any,
    receivers: Any,
    fresh_database: DatabaseUnderTest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="linli")
    key = new_key()
    hub = await start_flags_hub(secrets_key=key)
    receiver = Receiver()
    department = await hub.graphql(await hub.department_token())
    registered = await department.data(
        "mutation ($url: String!) { registerWebhook(url: $url) { secret } }",
        {"url": receivers(receiver) + "/hook"},
    )
    secret = registered["registerWebhook"]["secret"]
    token = await hub.department_token()
    issuer = hub.hub.settings.issuer

    raw_keys, raw_hooks = await _raw(fresh_database.url)
    (raw_jwk,) = raw_keys
    private = _opened(key, raw_jwk)
    assert raw_jwk.startswith(f'"{SEALED_PREFIX}')
    assert private["kid"] == _kid(token)
    for member in ("d", "x", "y"):  # not even the public halves are readable
        assert private[member] not in raw_jwk
    (raw_secret,) = raw_hooks
    assert raw_secret.startswith(SEALED_PREFIX)
    assert secret.removeprefix("whsec_") not in raw_secret
    assert Fernet(key).decrypt(raw_secret.removeprefix(SEALED_PREFIX)).decode() == secret

    # A new process over the same database and key: the same signing key, the same webhook.
    await hub.close()
    again = await start_flags_hub(secrets_key=key)
    assert (await _jwks_accepts(again, token, issuer))["client_id"]  # signed before the restart
    assert _kid(await again.department_token()) == private["kid"]  # and still signing
    flag_id = await again.raise_flag(await again.community_token())
    await eventually(lambda: _delivered(receiver, flag_id))
    payload = Webhook(secret).verify(receiver.received[-1].body, receiver.received[-1].headers)
    assert (payload["data"]["flag_id"], payload["data"]["assigned_to"]) == (flag_id, DEPT_GAS)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert any(r.name == "linli.service" for r in caplog.records)  # the hubs' lines are here
    for value in (key, secret, secret.removeprefix("whsec_"), private["d"]):
        assert value not in logged


async def _delivered(receiver: Receiver, flag_id: str) -> bool:
    return any(json.loads(r.body)["data"]["flag_id"] == flag_id for r in receiver.received)


async def _sealed_database(url: str, key: str | None) -> str:
    """A migrated hub database holding a signing key and a webhook, sealed with ``key``."""
    await migrate(MIGRATIONS, url)
    settings = HubSettings(database_url=url, secrets_key=key)
    db = Database(url)
    try:
        keys = KeyRing(db, settings)
        await keys.load()
        caller = Caller(
            org=DEPT_GAS,
            org_kind=OrgKind.DEPARTMENT,
            scopes=frozenset({"risk:verify"}),
            client_id="gas",
            subject="gas",
            district="110105",
        )
        async with db.transaction() as session:
            await webhooks.register_webhook(
                session,
                caller,
                "http://127.0.0.1:9/hook",
                now=datetime.now(UTC),
                outbound=settings.outbound_policy(),
                sealer=settings.sealer(),
            )
        return keys.signing_key.kid
    finally:
        await db.dispose()


def _serve(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`linli hub serve` as an operator runs it; it must stop before serving."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LINLI_")}
    return subprocess.run(
        # Migrated already: the migrations' own log lines stay out of the way.
        [str(LINLI), "hub", "serve", "--no-migrate", "--database-url", url],
        capture_output=True,
        text=True,
        env={**environment, "LINLI_PORT": str(free_port()), **env},
        timeout=120,
        check=False,
    )


async def test_a_wrong_or_missing_key_stops_the_hub_with_one_clear_line(
    fresh_database: DatabaseUnderTest,
) -> None:
    kid = await _sealed_database(fresh_database.url, new_key())
    before = await _raw(fresh_database.url)
    wrong = await asyncio.to_thread(_serve, fresh_database.url, LINLI_SECRETS_KEY=new_key())
    missing = await asyncio.to_thread(_serve, fresh_database.url)
    production = await asyncio.to_thread(_serve, fresh_database.url, LINLI_ENVIRONMENT="production")
    for done in (wrong, missing, production):
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert wrong.stderr.strip() == (
        f"linli: the hub's signing key {kid} cannot be decrypted with LINLI_SECRETS_KEY:"
        " wrong key? Set the key it was encrypted with (comma-separated after a new one while"
        " rotating)"
    )
    assert missing.stderr.strip() == (
        f"linli: the hub's signing key {kid} is encrypted but LINLI_SECRETS_KEY is not set;"
        " set the key the hub was running with"
    )
    assert production.stderr.strip() == (
        "linli: invalid settings: secrets_key (LINLI_SECRETS_KEY): Value error, production"
        " keeps secrets encrypted: set LINLI_SECRETS_KEY (make a key with"
        " `linli hub secrets new-key`)"
    )
    assert await _raw(fresh_database.url) == before  # nothing was written


def _reencrypt(url: str, folder: Path, key: str | None) -> Any:
    config = folder / "hub.toml"
    lines = [f'database_url = "{url}"'] + ([f'secrets_key = "{key}"'] if key else [])
    config.write_text("\n".join(lines) + "\n", "utf-8")
    return CliRunner().invoke(cli.app, ["hub", "secrets", "reencrypt", "--config", str(config)])


async def test_reencrypt_seals_plain_rows_and_moves_them_to_a_new_key(
    fresh_database: DatabaseUnderTest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = fresh_database.url
    await _sealed_database(url, None)  # development without a key: plain text
    raw_keys, raw_hooks = await _raw(url)
    assert "d" in json.loads(raw_keys[0])
    assert raw_hooks[0].startswith("whsec_")
    first, second = new_key(), new_key()
    db = Database(url)
    try:
        # A key and plain rows: they are still read; the hub says how to seal them.
        with caplog.at_level(logging.WARNING, logger="linli.hub.secrets"):
            async with secrets_lifecycle(HubSettings(database_url=url, secrets_key=first), db)():
                pass
        assert [r.getMessage() for r in caplog.records] == [
            "2 of the hub's stored secrets are in plain text: run `linli hub secrets reencrypt`"
        ]

        done = await asyncio.to_thread(_reencrypt, url, tmp_path, first)
        assert done.exit_code == 0, done.output
        assert done.output == "re-encrypted the hub's secrets: 2 encrypted, 0 in plain text\n"
        sealed_keys, sealed_hooks = await _raw(url)
        assert _opened(first, sealed_keys[0]) == json.loads(raw_keys[0])
        assert (
            Fernet(first).decrypt(sealed_hooks[0].removeprefix(SEALED_PREFIX)).decode()
            == (raw_hooks[0])
        )

        # Rotation: the new key in front, re-encrypt, and the old key opens nothing.
        done = await asyncio.to_thread(_reencrypt, url, tmp_path, f"{second},{first}")
        assert done.exit_code == 0, done.output
        rotated_keys, rotated_hooks = await _raw(url)
        assert _opened(second, rotated_keys[0]) == json.loads(raw_keys[0])
        with pytest.raises(InvalidToken):
            _opened(first, rotated_keys[0])
        with pytest.raises(InvalidToken):
            Fernet(first).decrypt(rotated_hooks[0].removeprefix(SEALED_PREFIX))
        assert await check_secrets(db, Sealer(second)) == await check_secrets(
            db, Sealer(f"{second},{first}")
        )
        with pytest.raises(SealedSecretError, match="cannot be decrypted"):
            await check_secrets(db, Sealer(first))

        done = await asyncio.to_thread(_reencrypt, url, tmp_path, None)
        assert isinstance(done.exception, SealedSecretError)
        assert str(done.exception) == "set LINLI_SECRETS_KEY to re-encrypt the hub's secrets"
        assert await _raw(url) == (rotated_keys, rotated_hooks)
    finally:
        await db.dispose()


async def test_without_a_key_development_warns_once(
    fresh_database: DatabaseUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    await _sealed_database(fresh_database.url, None)
    db = Database(fresh_database.url)
    try:
        with caplog.at_level(logging.WARNING, logger="linli.hub.secrets"):
            async with secrets_lifecycle(HubSettings(database_url=fresh_database.url), db)():
                pass
    finally:
        await db.dispose()
    assert [r.getMessage() for r in caplog.records] == [
        "LINLI_SECRETS_KEY is not set: the hub stores its signing keys and webhook secrets in"
        " plain text (development only; production refuses to start without it)"
    ]
