"""Every secret the hub keeps at rest: checked at start-up, re-encrypted on demand.

Two tables hold secrets the hub must read back: ``signing_keys.private_jwk``
and ``flag_webhooks.secret`` (see ``hub.sealed``). At start-up the hub opens
each of them with ``LINLI_SECRETS_KEY``, so a wrong or missing key stops it
with one line naming the setting, before it serves anything; without a key it
says once that new secrets are stored in plain text. ``linli hub secrets
reencrypt`` seals every row with the first key: plain rows from before, and
rows sealed with an older key of the list.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.auth.tables import SigningKey
from hub.flags.tables import WebhookRow
from hub.sealed import SECRETS_KEY_VARIABLE, SealedSecretError, Sealer
from hub.settings import HubSettings
from schema.runtime.db import Database

__all__ = ["SecretsCensus", "check_secrets", "reencrypt_secrets", "secrets_lifecycle"]

log = logging.getLogger("linli.hub.secrets")


@dataclass(frozen=True, slots=True)
class SecretsCensus:
    """How many stored secrets are sealed and how many are plain text."""

    sealed: int
    plain: int

    def __str__(self) -> str:
        return f"{self.sealed} encrypted, {self.plain} in plain text"


async def _rows(session: AsyncSession) -> tuple[list[SigningKey], list[WebhookRow]]:
    keys = (await session.execute(select(SigningKey).order_by(col(SigningKey.kid)))).scalars()
    hooks = (await session.execute(select(WebhookRow).order_by(col(WebhookRow.id)))).scalars()
    return list(keys), list(hooks)


def _census(keys: list[SigningKey], hooks: list[WebhookRow]) -> SecretsCensus:
    stored = [row.private_jwk for row in keys] + [row.secret for row in hooks]
    sealed = sum(Sealer.is_sealed(value) for value in stored)
    return SecretsCensus(sealed=sealed, plain=len(stored) - sealed)


async def check_secrets(db: Database, sealer: Sealer) -> SecretsCensus:
    """Open every stored secret; ``SealedSecretError`` names the first that cannot be opened."""
    async with db.sessions() as session:
        keys, hooks = await _rows(session)
    for key in keys:
        sealer.unseal_json(key.private_jwk, what=f"the hub's signing key {key.kid}")
    for hook in hooks:
        sealer.unseal(hook.secret, what=f"the secret of webhook {hook.id}")
    return _census(keys, hooks)


async def reencrypt_secrets(db: Database, sealer: Sealer) -> SecretsCensus:
    """Seal every stored secret afresh with the first key, in one transaction."""
    if not sealer.encrypts:
        raise SealedSecretError(f"set {SECRETS_KEY_VARIABLE} to re-encrypt the hub's secrets")
    async with db.transaction() as session:
        keys, hooks = await _rows(session)
        for key in keys:
            key.private_jwk = sealer.reseal_json(
                key.private_jwk, what=f"the hub's signing key {key.kid}"
            )
        for hook in hooks:
            hook.secret = sealer.reseal(hook.secret, what=f"the secret of webhook {hook.id}")
        await session.flush()
        return _census(keys, hooks)


def secrets_lifecycle(
    settings: HubSettings, db: Database
) -> Callable[[], AbstractAsyncContextManager[None]]:
    """A hub lifecycle that refuses to start with secrets its key cannot open."""

    @asynccontextmanager
    async def lifecycle() -> AsyncIterator[None]:
        sealer = settings.sealer()
        try:
            census = await check_secrets(db, sealer)
        except (OSError, SQLAlchemyError):
            # Not this check's verdict: readiness reports the database, keys load on first use.
            log.exception("could not read the hub's stored secrets at start-up")
            census = SecretsCensus(sealed=0, plain=0)
        if not sealer.encrypts:
            log.warning(
                "%s is not set: the hub stores its signing keys and webhook secrets in plain"
                " text (development only; production refuses to start without it)",
                SECRETS_KEY_VARIABLE,
            )
        elif census.plain:
            log.warning(
                "%d of the hub's stored secrets are in plain text:"
                " run `linli hub secrets reencrypt`",
                census.plain,
            )
        yield

    return lifecycle
