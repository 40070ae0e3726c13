"""The hub's signing keys in memory: the key that signs, and the public JWKS.

Every replica reloads the keys from the database at most every
``settings.key_refresh_s`` seconds (and at once after a local rotation), so a
rotation made elsewhere (another replica, `linli keys rotate`) reaches it
within that interval. Retired keys stay published until every token they can
have signed has expired.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey

from hub.auth import service
from hub.auth.tables import SigningKey
from hub.settings import HubSettings
from schema.runtime.db import Database

__all__ = ["KeyRing", "key_grace_s"]

log = logging.getLogger("linli.hub.auth.keys")

_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "kid", "use", "alg")


def key_grace_s(settings: HubSettings) -> float:
    """How long a retired key stays published.

    A replica that has not yet reloaded may sign with the retired key for up to
    ``key_refresh_s`` after the rotation, and each such token lives
    ``access_token_ttl_s``.
    """
    return settings.access_token_ttl_s + settings.key_refresh_s


@dataclass(frozen=True, slots=True)
class _Loaded:
    signing: ECKey
    public: dict[str, ECKey]
    jwks: dict[str, Any]
    at: float


def _public_jwk(private_jwk: dict[str, Any]) -> dict[str, Any]:
    # Built from an allow-list of members, so no private member can ever leak.
    return {name: private_jwk[name] for name in _PUBLIC_MEMBERS if name in private_jwk}


class KeyRing:
    """The hub's keys, loaded from its database and held in memory."""

    def __init__(
        self,
        db: Database,
        settings: HubSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sealer = settings.sealer()
        self._clock = clock
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """Whether keys were loaded at least once."""
        return self._loaded is not None

    @property
    def signing_key(self) -> ECKey:
        """The private key that signs new tokens."""
        return self._state().signing

    def public_key(self, kid: str) -> ECKey | None:
        """The published public key with that ``kid``."""
        return self._state().public.get(kid)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: public members only."""
        return self._state().jwks

    def _state(self) -> _Loaded:
        if self._loaded is None:
            raise RuntimeError("the hub's signing keys are not loaded yet")
        return self._loaded

    async def load(self) -> None:
        """Read the keys from the database, creating the first signing key if there is none."""
        async with self.db.transaction() as session:
            signing = await service.ensure_signing_key(session, sealer=self.sealer)
            rows = await service.published_keys(session, grace_s=key_grace_s(self.settings))
        self._install(signing, rows)

    async def refresh_if_stale(self) -> None:
        """Reload when the keys are older than ``key_refresh_s`` (or were never loaded)."""
        loaded = self._loaded
        if loaded is not None and self._clock() - loaded.at < self.settings.key_refresh_s:
            return
        async with self._lock:
            if self._loaded is not loaded:  # another task reloaded while this one waited
                return
            try:
                await self.load()
            except Exception:
                if loaded is None:
                    raise
                # Keep signing with the keys in memory; try again after the interval.
                self._loaded = _Loaded(loaded.signing, loaded.public, loaded.jwks, self._clock())
                log.exception("could not reload the signing keys; keeping the ones in memory")

    async def rotate(self) -> str:
        """Sign with a new key from now on (see ``service.rotate_keys``); returns its ``kid``."""
        async with self.db.transaction() as session:
            row = await service.rotate_keys(
                session, grace_s=key_grace_s(self.settings), sealer=self.sealer
            )
            kid = row.kid
        await self.load()
        return kid

    def private_jwk(self, row: SigningKey) -> dict[str, Any]:
        """The private JWK of a stored key, unsealed (``SealedSecretError`` if it cannot be)."""
        return self.sealer.unseal_json(row.private_jwk, what=f"signing key {row.kid}")

    def _install(self, signing: SigningKey, rows: list[SigningKey]) -> None:
        published = {row.kid: _public_jwk(self.private_jwk(row)) for row in rows}
        signing_jwk = self.private_jwk(signing)
        public = {kid: ECKey.import_key(jwk) for kid, jwk in published.items()}
        private = ECKey.import_key(signing_jwk)
        public.setdefault(signing.kid, ECKey.import_key(_public_jwk(signing_jwk)))
        jwks = {"keys": list(published.values())}
        if signing.kid not in {row.kid for row in rows}:
            jwks["keys"].insert(0, _public_jwk(signing_jwk))
        self._loaded = _Loaded(private, public, jwks, self._clock())
