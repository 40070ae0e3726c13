"""Reading warehouse inventory exports: CSV (UTF-8, with or without BOM) and XLSX sheets."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.errors import InvalidMapping, UpstreamBadResponse, UpstreamTooLarge

__all__ = ["DEFAULT_COLUMNS", "InventorySettings", "Sheet", "read_sheet"]

DEFAULT_COLUMNS = {
    "item_code": "item_code",
    "name": "name",
    "kind": "kind",
    "quantity": "quantity",
    "unit": "unit",
}
"""Record field -> column header. ``available`` and ``address`` may be mapped too."""


class InventorySettings(BaseSettings):
    """One warehouse export (env ``LINLI_ADAPTER_INVENTORY_*`` or TOML ``[inventory]``)."""

    model_config = SettingsConfigDict(env_prefix="LINLI_ADAPTER_INVENTORY_", extra="ignore")

    file: str | None = Field(None, description="CSV or XLSX file the service re-imports on change")
    warehouse: str = Field("WH-1", min_length=1, max_length=100, description="Warehouse code")
    warehouse_address: str = Field("", description="Address of the warehouse")
    columns: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_COLUMNS), description="field -> column header"
    )
    kind_names: dict[str, str] = Field(
        default_factory=dict, description="Extra names of kinds: name in the file -> kind code"
    )
    sheet: str | None = Field(None, description="XLSX sheet name (default: the first)")
    max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_rows: int = Field(100_000, ge=1)
    interval_s: float = Field(60.0, gt=0)
    poll_timeout_s: float = Field(120.0, gt=0)


@dataclass(frozen=True, slots=True)
class Sheet:
    """The header row and the data rows of a file, each row with its line number (1-based)."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_sheet(path: Path, settings: InventorySettings) -> Sheet:
    """The rows of a CSV or XLSX file; the first non-empty row is the header."""
    size = path.stat().st_size
    if size > settings.max_bytes:
        raise UpstreamTooLarge(url=str(path), limit=settings.max_bytes)
    suffix = path.suffix.lower()
    raw: list[tuple[int, list[str]]] = []
    if suffix == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UpstreamBadResponse(f"{path.name}: not UTF-8 text ({error.reason})") from error
        for line, row in enumerate(csv.reader(io.StringIO(text)), 1):
            raw.append((line, [c.strip() for c in row]))
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # type: ignore[import-untyped]

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a bad file
            raise UpstreamBadResponse(f"{path.name}: not a readable XLSX file") from error
        try:
            sheet = book[settings.sheet] if settings.sheet else book.worksheets[0]
            for line, values in enumerate(sheet.iter_rows(values_only=True), 1):
                raw.append((line, [_cell(v) for v in values]))
        except KeyError as error:
            raise InvalidMapping(f"{path.name} has no sheet {settings.sheet!r}") from error
        finally:
            book.close()
    else:
        raise InvalidMapping(f"{path.name}: only .csv and .xlsx files are read")
    raw = [(line, row) for line, row in raw if any(row)]
    if not raw:
        raise UpstreamBadResponse(f"{path.name}: the file has no header row")
    (_, headers), *rows = raw
    return Sheet(headers=headers, rows=rows[: settings.max_rows])
