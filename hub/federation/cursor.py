"""Federated cursors: each source's position, signed so a forged cursor is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson

from schema.errors import InvalidCursor

__all__ = ["CursorCodec", "FederatedPosition"]


@dataclass
class FederatedPosition:
    """Where paging stands: per source, the source's own cursor (absent: from the start)."""

    query: str  # a digest of the order and filters the cursor belongs to
    after: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def copy(self) -> FederatedPosition:
        return FederatedPosition(self.query, dict(self.after), set(self.done))


class CursorCodec:
    """Encodes positions as opaque, HMAC-signed strings."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, position: FederatedPosition) -> str:
        payload = orjson.dumps(
            {"q": position.query, "a": position.after, "d": sorted(position.done)},
            option=orjson.OPT_SORT_KEYS,
        )
        return base64.urlsafe_b64encode(self._mac(payload) + payload).decode().rstrip("=")

    def decode(self, cursor: str, query: str) -> FederatedPosition:
        """The position in ``cursor``; ``InvalidCursor`` if forged or for another query."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("malformed cursor") from exc
        mac, payload = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor("the cursor was not issued by this hub")
        try:
            value: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:  # only a cursor signed with our secret gets here
            raise InvalidCursor("malformed cursor") from exc
        if value["q"] != query:
            raise InvalidCursor("the cursor was issued for another order or filter")
        return FederatedPosition(query, dict(value["a"]), set(value["d"]))
