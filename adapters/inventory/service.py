"""Importing inventory files into the adapter database; the adapter re-imports on change."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from adapters.base import Batch, PollReport, Problem, Validators
from adapters.inventory.client import InventorySettings, read_sheet
from adapters.inventory.codec import RowProblem, resources_from_sheet
from adapters.settings import AdapterServiceSettings
from adapters.store import SPECS, load_validators, save_validators, upsert_keyed
from schema.records import ResourceCreate
from schema.runtime.db import Database

__all__ = ["ImportReport", "InventoryAdapter", "import_file"]


@dataclass(slots=True)
class ImportReport:
    """What an import did, and every row it refused with its line and reason."""

    file: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    fatal: bool = False

    def summary(self) -> str:
        return (
            f"{self.file}: {self.created} created, {self.updated} updated,"
            f" {self.unchanged} unchanged, {len(self.rejected)} rejected"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [r.as_dict() for r in self.rejected],
            "fatal": self.fatal,
        }


async def import_file(db: Database, path: Path, settings: InventorySettings) -> ImportReport:
    """Import the good rows of ``path`` (one transaction); report the rest."""
    sheet = await asyncio.to_thread(read_sheet, path, settings)
    read = resources_from_sheet(sheet, settings)
    report = ImportReport(file=str(path), rejected=read.rejected, fatal=read.fatal)
    if read.fatal:
        return report
    async with db.transaction() as session:
        for item in read.records:
            outcome = await upsert_keyed(session, SPECS["Resource"], "inventory", item)
            setattr(report, outcome.action, getattr(report, outcome.action) + 1)
    return report


def _file_validators(path: Path) -> Validators:
    stat = path.stat()
    return Validators(etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')


class InventoryAdapter:
    """Keeps one warehouse file imported as Resources (``ResourceReader``)."""

    name = "inventory"

    def __init__(self, settings: InventorySettings) -> None:
        self.capabilities = ["resources"]
        self.settings = settings
        self.interval_s = settings.interval_s
        self.poll_timeout_s = settings.poll_timeout_s

    async def read_resources(self) -> Batch[ResourceCreate]:
        """The rows of the configured file that pass, as Resources."""
        if not self.settings.file:
            return Batch()
        path = Path(self.settings.file)
        read = resources_from_sheet(
            await asyncio.to_thread(read_sheet, path, self.settings), self.settings
        )
        return Batch(
            records=read.records,
            problems=[Problem(f"{path.name}:{r.line}", r.code, r.reason) for r in read.rejected],
        )

    async def poll(self, db: Database) -> PollReport:
        """Re-import the file when it changed."""
        if not self.settings.file:
            return PollReport(not_modified=True)
        path = Path(self.settings.file)
        validators = await asyncio.to_thread(_file_validators, path)
        async with db.sessions() as session:
            if await load_validators(session, self.name, str(path)) == validators:
                return PollReport(not_modified=True)
        report = await import_file(db, path, self.settings)
        if not report.fatal:
            async with db.transaction() as session:
                await save_validators(session, self.name, str(path), validators)
        return PollReport(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            problems=tuple(
                Problem(f"{path.name}:{r.line}", r.code, r.reason) for r in report.rejected
            ),
        )

    def router(self, db: Database, settings: AdapterServiceSettings) -> APIRouter | None:
        return None
