"""Relay cursor connections with signed keyset cursors over a stable order."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry

from schema.errors import InvalidCursor, PageSizeTooLarge

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Connection",
    "Edge",
    "Page",
    "PageInfo",
    "RecordOrder",
    "decode_cursor",
    "decode_id_cursor",
    "encode_cursor",
    "encode_id_cursor",
    "page_size",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

T = TypeVar("T")


@strawberry.enum
class RecordOrder(enum.Enum):
    """The order of a list; ties are broken by id, so every order is total."""

    UPDATED_DESC = "updated_desc"
    UPDATED_ASC = "updated_asc"
    CREATED_DESC = "created_desc"
    CREATED_ASC = "created_asc"

    @property
    def column(self) -> str:
        return "updated_at" if self.value.startswith("updated") else "created_at"

    @property
    def descending(self) -> bool:
        return self.value.endswith("desc")


@strawberry.type
class PageInfo:
    """Where a page ends and whether more follow."""

    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    """One record of a page and the cursor just after it."""

    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    """A page of records (Relay cursor connection)."""

    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        """The records of this page, without cursors."""
        return [edge.node for edge in self.edges]


@strawberry.type(description="A page of records; pass endCursor as after for the next")
class Page(Generic[T]):
    """A plain page (``Page[AidCase]`` is named ``AidCasePage`` in the schema)."""

    items: list[T]
    end_cursor: str | None
    has_next_page: bool


def page_size(first: int | None) -> int:
    """Validate ``first`` against the cap."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise PageSizeTooLarge("first must not be negative", limit=MAX_PAGE_SIZE)
    if first > MAX_PAGE_SIZE:
        raise PageSizeTooLarge(
            f"first={first} is over the page-size cap of {MAX_PAGE_SIZE}", limit=MAX_PAGE_SIZE
        )
    return first


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:16]


def _seal(value: Any, secret: bytes) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_mac(secret, raw) + raw).decode().rstrip("=")


def _open(cursor: str, secret: bytes) -> Any:
    """The JSON value of a signed cursor; ``InvalidCursor`` if forged or garbled."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        signed = base64.urlsafe_b64decode(padded.encode())
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("malformed cursor") from exc
    mac, raw = signed[:16], signed[16:]
    if not hmac.compare_digest(mac, _mac(secret, raw)):
        raise InvalidCursor("the cursor was not issued here")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # only a cursor we signed gets here
        raise InvalidCursor("malformed cursor") from exc


def encode_cursor(order: RecordOrder, key: datetime, record_id: str, *, secret: bytes) -> str:
    """An opaque cursor naming the position just after one record, signed with ``secret``."""
    return _seal([order.value, key.isoformat(), record_id], secret)


def decode_cursor(cursor: str, order: RecordOrder, *, secret: bytes) -> tuple[datetime, str]:
    """The (sort key, id) after which a cursor points; ``InvalidCursor`` if forged."""
    value = _open(cursor, secret)
    try:
        order_value, key, record_id = value
        if order_value != order.value:
            raise InvalidCursor("the cursor was issued for another order")
        moment = datetime.fromisoformat(key)
        if moment.tzinfo is None or not isinstance(record_id, str):
            raise ValueError
    except InvalidCursor:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    return moment, record_id


def encode_id_cursor(list_name: str, record_id: str, *, secret: bytes) -> str:
    """A signed cursor just after ``record_id`` of a list in id order named ``list_name``."""
    return _seal([list_name, record_id], secret)


def decode_id_cursor(cursor: str, list_name: str, *, secret: bytes) -> str:
    """The id after which an ``encode_id_cursor`` cursor points; ``InvalidCursor`` if forged."""
    value = _open(cursor, secret)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
        raise InvalidCursor("malformed cursor")
    if value[0] != list_name:
        raise InvalidCursor("the cursor was issued for another list")
    return value[1]
