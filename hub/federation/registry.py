"""The hub's sources: who they are, whether they answer, and how to reach them."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import select

from hub.federation.breaker import Breaker
from hub.federation.client import SourceClient
from hub.federation.errors import SourceError
from hub.federation.tables import SourceRow
from policies.audit import AuditEntry
from policies.caller import Caller
from schema import SCHEMA_VERSION
from schema.api.types import Organisation
from schema.enums import OrgKind
from schema.errors import InvalidInput, NotFound
from schema.geo import BBox
from schema.records import OrganisationPublic
from schema.runtime.db import Database
from schema.runtime.outbound import URL_NOT_ALLOWED, OutboundPolicy, UrlNotAllowed
from schema.runtime.wellknown import WellKnown, describe_error
from schema.storage import utcnow

__all__ = [
    "FEDERATION_LOOP",
    "SOURCE_EXISTS",
    "Registry",
    "Source",
    "SourceAudit",
    "SourceHealth",
    "organisations",
]

log = logging.getLogger("linli.hub.sources")

SOURCE_EXISTS = "SOURCE_EXISTS"
#: A hub registering itself as a source, directly or through a hub below it.
FEDERATION_LOOP = "FEDERATION_LOOP"

SourceAudit = Callable[[AuditEntry], Awaitable[None]]
"""Appends one entry to the hub's audit log (wired in ``hub/app.py``; governance owns the log)."""


async def _no_audit(entry: AuditEntry) -> None:
    log.warning("source change not audited: %s %s", entry.action, entry.owner)


class SourceHealth(enum.StrEnum):
    UNKNOWN = "unknown"  # not checked yet
    OK = "ok"
    DOWN = "down"
    INCOMPATIBLE = "incompatible"  # another major schema version, or a mismatched id
    NOT_ALLOWED = "not_allowed"  # its stored URL fails the outbound check now: never called
    LOOP = "loop"  # a hub that is this hub, or federates it: never called


@dataclass
class Source:
    """One federated source as the hub knows it."""

    id: str
    url: str
    kind: str = "community"
    name: str = ""
    division_code: str = ""
    district: str | None = None
    neighbours: list[str] = field(default_factory=list)
    bbox: BBox | None = None
    capabilities: list[str] = field(default_factory=list)
    schema_version: str | None = None
    origin: str = "admin"
    health: SourceHealth = SourceHealth.UNKNOWN
    last_seen: datetime | None = None
    latency_ms: float | None = None
    last_error: str | None = None
    breaker: Breaker = field(default_factory=Breaker)
    federates: list[str] = field(default_factory=list)  # a hub's hubs below, as it says

    @property
    def usable(self) -> bool:
        return self.health not in (
            SourceHealth.INCOMPATIBLE,
            SourceHealth.NOT_ALLOWED,
            SourceHealth.LOOP,
        )

    @property
    def described(self) -> bool:
        """Whether the hub has read the source's well-known document (now or before)."""
        return self.schema_version is not None

    def serves(self, capability: str) -> bool:
        # A source not yet described is planned, so that the answer names it, but it is
        # asked nothing until a health check has read what it serves (``Executor._ask``).
        return not self.described or capability in self.capabilities

    def apply(self, described: WellKnown) -> None:
        """Take in what ``/.well-known/linli-node`` said."""
        self.kind = described.kind.value
        self.name = described.name
        self.division_code = described.division_code or self.division_code
        self.district = described.district or self.district
        self.neighbours = list(described.neighbours)
        self.bbox = described.bbox
        self.capabilities = list(described.capabilities)
        self.schema_version = described.schema_version
        self.federates = list(described.federates)


def _description(source: Source) -> tuple[Any, ...]:
    return (
        source.url, source.kind, source.name, source.division_code, source.district,
        tuple(source.neighbours), source.bbox, tuple(source.capabilities), source.schema_version,
    )  # fmt: skip


def compatible(version: str | None) -> bool:
    """Same major version of the common schema as this hub."""
    return bool(version) and str(version).split(".")[0] == SCHEMA_VERSION.split(".")[0]


class Registry:
    """All sources, from the config file and admin mutations, health-checked in the background."""

    def __init__(
        self,
        db: Database,
        client: SourceClient,
        *,
        config_file: Path | None = None,
        check_interval_s: float = 10.0,
        timeout_s: float = 2.0,
        breaker: Callable[[], Breaker] = Breaker,
        outbound: OutboundPolicy | None = None,
        audit: SourceAudit = _no_audit,
        self_id: str | None = None,
    ) -> None:
        self.self_id = self_id  # this hub's own id: a source that is or federates it is a loop
        self.new_breaker = breaker
        self.outbound = outbound or OutboundPolicy(allow_internal=False)
        self.audit = audit
        self.db = db
        self.client = client
        self.config_file = config_file
        self.check_interval_s = check_interval_s
        self.timeout_s = timeout_s
        self.sources: dict[str, Source] = {}
        # A new source is saved by its registration and, racing it, by a health check round.
        self._saving = asyncio.Lock()

    async def load(self) -> None:
        """Sources from the database, then the config file (which wins for its own ids).

        A stored URL that fails the outbound check now (the allow-list or the environment
        changed since) is kept out: logged, listed as ``not_allowed``, never called, until
        its URL is replaced or the source removed. A name's addresses are checked at
        every call, where they count.
        """
        async with self.db.sessions() as session:
            for row in (await session.execute(select(SourceRow))).scalars():
                self.sources[row.id] = Source(
                    id=row.id, url=row.url, kind=row.kind, name=row.name,
                    division_code=row.division_code, district=row.district,
                    neighbours=list(row.neighbours),
                    bbox=BBox.model_validate(row.bbox) if row.bbox else None,
                    capabilities=list(row.capabilities), schema_version=row.schema_version,
                    origin=row.origin, breaker=self.new_breaker(),
                )  # fmt: skip
        for source in self.sources.values():
            refusal = self._refusal(source.url)
            if refusal is not None:
                log.error("source %s from the database is not federated: %s", source.id, refusal)
                source.health, source.last_error = SourceHealth.NOT_ALLOWED, refusal
        for entry in await self._config_entries():
            source_id, url = entry["id"], entry["url"]
            refusal = self._refusal(url)
            if refusal is not None:  # listed, never called, and not written over the stored one
                log.error(
                    "source %s from %s is not federated: %s", source_id, self.config_file, refusal
                )
                self.sources[source_id] = Source(
                    id=source_id, url=url, origin="config", health=SourceHealth.NOT_ALLOWED,
                    last_error=refusal, breaker=self.new_breaker(),
                )  # fmt: skip
                continue
            stored = self.sources.get(source_id)
            if stored is not None and stored.health is SourceHealth.NOT_ALLOWED:
                stored.health, stored.last_error = SourceHealth.UNKNOWN, None
            await self._put(source_id, url, origin="config", check=False)

    def _refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called now (no name resolution), or ``None``."""
        try:
            self.outbound.admits(url)
        except UrlNotAllowed as exc:
            return f"{URL_NOT_ALLOWED}: {exc.message}"
        return None

    async def _config_entries(self) -> list[dict[str, str]]:
        if self.config_file is None:
            return []
        document = tomllib.loads(self.config_file.read_text("utf-8"))
        entries = []
        for item in document.get("sources", []):
            if not isinstance(item, dict) or "id" not in item or "url" not in item:
                raise ValueError(f"{self.config_file}: every [[sources]] needs id and url")
            entries.append({"id": str(item["id"]), "url": str(item["url"]).rstrip("/")})
        return entries

    async def add(
        self, source_id: str, url: str, *, origin: str = "admin", check: bool = True
    ) -> Source:
        """Register a new source and persist it; an existing id is refused (``SOURCE_EXISTS``)."""
        url = await self.outbound.check(url)
        if source_id in self.sources:
            raise InvalidInput(
                f"a source {source_id} exists; replaceSourceUrl changes its URL",
                code=SOURCE_EXISTS,
                field="id",
            )
        if self.self_id is not None and source_id == self.self_id:
            raise InvalidInput(
                f"{source_id} is this hub: a hub is no source of itself",
                code=FEDERATION_LOOP,
                field="id",
            )
        if check:
            probe = Source(id=source_id, url=url, origin=origin, breaker=self.new_breaker())
            await self.check(probe)
            if probe.health is SourceHealth.LOOP:
                raise InvalidInput(probe.last_error or "a loop", code=FEDERATION_LOOP, field="url")
        return await self._put(source_id, url, origin=origin, check=check)

    def federated_hubs(self) -> list[str]:
        """The ids of every hub below this one: hub sources and the hubs they federate."""
        below = {
            hub_id
            for s in self.sources.values()
            if s.kind == "hub" and s.health is not SourceHealth.LOOP
            for hub_id in (s.id, *s.federates)
        }
        return sorted(below)

    async def replace_url(self, source_id: str, url: str, *, caller: Caller) -> Source:
        """Point an existing source at another URL; audited, since its tokens follow the URL."""
        url = await self.outbound.check(url)
        source = self.sources.get(source_id)
        if source is None:
            raise NotFound(f"no source {source_id}")
        await self.audit(
            AuditEntry(
                action="replace_source_url",
                owner=source_id,
                caller=caller,
                decision={"from": source.url, "to": url},
            )
        )
        source.health, source.last_error = SourceHealth.UNKNOWN, None
        source.breaker = self.new_breaker()
        return await self._put(source_id, url, origin="admin", check=True)

    async def _put(self, source_id: str, url: str, *, origin: str, check: bool) -> Source:
        source = self.sources.get(source_id) or Source(
            id=source_id, url=url, origin=origin, breaker=self.new_breaker()
        )
        source.url, source.origin = url, origin
        self.sources[source_id] = source
        if check:
            await self.check(source)
        await self._save(source)
        return source

    async def remove(self, source_id: str) -> None:
        if self.sources.pop(source_id, None) is None:
            raise NotFound(f"no source {source_id}")
        async with self.db.transaction() as session:
            row = await session.get(SourceRow, source_id)
            if row is not None:
                await session.delete(row)

    async def _save(self, source: Source) -> None:
        async with self._saving, self.db.transaction() as session:
            row = await session.get(SourceRow, source.id)
            if row is None:
                row = SourceRow(id=source.id, url=source.url, added_at=utcnow())
            row.url, row.kind, row.name = source.url, source.kind, source.name
            row.division_code, row.district = source.division_code, source.district
            row.neighbours, row.capabilities = source.neighbours, source.capabilities
            row.bbox = source.bbox.model_dump() if source.bbox else None
            row.schema_version, row.origin = source.schema_version, source.origin
            session.add(row)

    async def check(self, source: Source) -> None:
        """Ask a source who it is; mark it ok, down or incompatible."""
        started = time.perf_counter()
        try:
            described = await self.client.get_json(
                f"{source.url}/.well-known/linli-node", timeout_s=self.timeout_s
            )
        except SourceError as exc:
            source.health, source.last_error = SourceHealth.DOWN, exc.detail
            return
        source.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        try:
            document = WellKnown.model_validate(described)
        except ValidationError as exc:
            source.health, source.last_error = SourceHealth.INCOMPATIBLE, describe_error(exc)
            return
        if document.id != source.id:
            source.health = SourceHealth.INCOMPATIBLE
            source.last_error = "the source names itself differently from its registration"
            return
        if self.self_id is not None and self.self_id in (document.id, *document.federates):
            source.health = SourceHealth.LOOP
            source.last_error = (
                f"{FEDERATION_LOOP}: {document.id} is this hub ({self.self_id}) or federates it"
            )
            return
        source.apply(document)
        source.last_seen = utcnow()
        if not compatible(source.schema_version):
            source.health = SourceHealth.INCOMPATIBLE
            source.last_error = (
                f"schema version {source.schema_version} is not compatible with {SCHEMA_VERSION}"
            )
            return
        source.health, source.last_error = SourceHealth.OK, None

    async def check_all(self) -> None:
        """Check every source that may be called; persist what changed in their descriptions."""
        sources = [s for s in self.sources.values() if s.health is not SourceHealth.NOT_ALLOWED]
        before = [_description(s) for s in sources]
        await asyncio.gather(*(self.check(s) for s in sources))
        for source, old in zip(sources, before, strict=True):
            if _description(source) != old:
                await self._save(source)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Registry]:
        """Load, then health-check in the background until the hub stops."""
        await self.load()
        await self.check_all()

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.check_interval_s)
                try:
                    await self.check_all()
                except Exception:  # the loop must outlive any one bad round
                    log.exception("health check round failed")

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def organisations(registry: Registry) -> list[Organisation]:
    """The communities the registry knows, as GraphQL organisations."""
    out = []
    for source in sorted(registry.sources.values(), key=lambda s: s.id):
        if source.kind != "community" or not source.division_code:
            continue
        public = OrganisationPublic(
            id=f"Organisation:{source.id}:{source.division_code}",
            code=source.division_code,
            name=source.name or source.id,
            kind=OrgKind.COMMUNITY,
            district=source.district or source.division_code[:6],
            neighbours=source.neighbours,
            bbox=source.bbox,
        )
        out.append(Organisation.from_pydantic(public))
    return out
