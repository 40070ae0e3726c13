"""The federation as one part of the hub app: built once in ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from hub.federation.breaker import Breaker
from hub.federation.client import SourceClient
from hub.federation.cursor import CursorCodec
from hub.federation.executor import Federation, RelayAudit, TokenMinter
from hub.federation.registry import Registry, SourceAudit
from hub.federation.stale import StaleStore
from hub.settings import HubSettings
from schema.runtime.db import Database

__all__ = ["HubFederation", "create_federation"]


@dataclass(frozen=True)
class HubFederation:
    """The registry, the stale store and the executor over one pooled client."""

    client: SourceClient
    registry: Registry
    stale: StaleStore
    executor: Federation

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Load and health-check sources; flush stale answers; close the pool at the end."""
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.client.aclose)
            await stack.enter_async_context(self.registry.running())
            await stack.enter_async_context(self.stale.running())
            yield


def create_federation(
    settings: HubSettings,
    db: Database,
    mint: TokenMinter,
    relay_audit: RelayAudit,
    source_audit: SourceAudit,
) -> HubFederation:
    """The federation's objects for one hub process.

    ``relay_audit`` logs what it passes on, ``source_audit`` changes of a source's URL.
    """
    outbound = settings.outbound_policy()
    client = SourceClient(outbound=outbound)
    registry = Registry(
        db,
        client,
        config_file=settings.sources_file,
        check_interval_s=settings.health_interval_s,
        timeout_s=settings.source_timeout_s,
        breaker=lambda: Breaker(settings.breaker_threshold, settings.breaker_cooldown_s),
        outbound=outbound,
        audit=source_audit,
        self_id=settings.hub_id,
    )
    stale = StaleStore(db)
    executor = Federation(
        registry,
        client,
        mint,
        stale,
        CursorCodec(settings.cursor_secret.encode()),
        relay_audit=relay_audit,
        timeout_s=settings.source_timeout_s,
        deadline_s=settings.deadline_s,
        max_inflight_per_source=settings.max_inflight_per_source,
    )
    return HubFederation(client, registry, stale, executor)
