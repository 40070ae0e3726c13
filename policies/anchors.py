"""Anchoring a source's audit chain at the hub: the report, the checkpoint, the witness.

A chain verified on its own cannot show that its last rows were cut off, or
that a row was changed and every later hash recomputed. So it is anchored
outside the source:

1. The source reports the ``(seq, hash)`` of each row added since the hub's
   last anchor, at most ``MAX_ANCHOR_ROWS`` at a time, to ``POST
   /audit/anchors`` with a client-credentials token of its own hub client (the
   one nodes deliver flags with). The hub accepts only reports that continue
   where the last one ended, from a client of the organisation that owns the
   source.
2. The source signs each report with ``anchor_mac``: HMAC-SHA256 over the
   report under its ``audit_anchor_secret``, a key the hub never sees (unlike the
   client secret, which the hub receives at ``/oauth/token``). The hub keeps
   the MAC, so whoever holds the source's key can show that an anchor came
   from the source and was not made up by the hub.
3. The hub keeps every reported hash (its witness table) and records each
   report as one ``anchor`` row of its own hash chain, so the hub's chain
   anchors the source's; it answers with a checkpoint, a JWT (``typ``
   ``CHECKPOINT_TYPE``) signed with the hub's token signing key, naming the
   source's head, the source's MAC and the hub chain row that recorded it.
4. ``GET /audit/anchors/{source}`` serves the signed checkpoint and the
   witnessed hashes (public: they say how many rows a log has, nothing of
   their content). ``linli audit verify --hub-url`` checks the checkpoint's
   signature against the hub's JWKS and the chain against every witnessed hash:
   the first row that is missing (truncation) or differs (rewriting) is named.

The design stays small on purpose: no key of the source's own to publish or
rotate, no table at the source (the hub is the witness), and the hub's own
chain is checked by the same command on the hub's database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Final, Self

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.tokens import JwksCache, TokenError

__all__ = [
    "ANCHORS_PATH",
    "CHECKPOINT_TYPE",
    "MAX_ANCHOR_ROWS",
    "AnchorReport",
    "AnchorUnavailable",
    "Checkpoint",
    "Witness",
    "anchor_mac",
    "fetch_witness",
    "read_checkpoint",
]

ANCHORS_PATH: Final = "/audit/anchors"
CHECKPOINT_TYPE: Final = "linli-audit-checkpoint+jwt"
MAX_ANCHOR_ROWS: Final = 1000
_HEX64 = r"^[0-9a-f]{64}$"
_SOURCE_ID = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"


class AnchorUnavailable(Exception):
    """The hub's anchors could not be read or do not check out (the message is one line)."""


def anchor_mac(key: str, source: str, rows: list[tuple[int, str]]) -> str:
    """The source's HMAC-SHA256 over one report (its id and every ``(seq, hash)``)."""
    payload = json.dumps({"source": source, "rows": rows}, separators=(",", ":"))
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


class AnchorReport(BaseModel):
    """``POST /audit/anchors``: rows a source added since the hub's last anchor of it."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=_SOURCE_ID)
    rows: list[tuple[int, str]] = Field(min_length=1, max_length=MAX_ANCHOR_ROWS)
    mac: str = Field(pattern=_HEX64)

    @model_validator(mode="after")
    def _consecutive(self) -> Self:
        first = self.rows[0][0]
        for i, (seq, digest) in enumerate(self.rows):
            if seq != first + i or seq < 1:
                raise ValueError("rows must have consecutive seq numbers from 1 up")
            if not re.fullmatch(_HEX64, digest):
                raise ValueError(f"the hash of seq {seq} is not 64 lowercase hex digits")
        return self


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The hub's signed statement of the last anchored row of a source's chain."""

    source: str
    first: int
    """The first ``seq`` of the report that ended at ``seq`` (what ``mac`` covers)."""
    seq: int
    hash: str
    mac: str
    hub_seq: int
    signed: bool
    """Whether the signature was checked against the hub's JWKS."""

    @classmethod
    def from_claims(cls, claims: dict[str, Any], *, signed: bool) -> Checkpoint:
        try:
            return cls(
                source=str(claims["source"]),
                first=int(claims["from"]),
                seq=int(claims["seq"]),
                hash=str(claims["hash"]),
                mac=str(claims["mac"]),
                hub_seq=int(claims["hub_seq"]),
                signed=signed,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnchorUnavailable(f"the checkpoint lacks {exc}") from None


@dataclass(frozen=True, slots=True)
class Witness:
    """What the hub witnessed of one source's chain: every anchored hash, and the checkpoint."""

    checkpoint: Checkpoint | None
    hashes: dict[int, str]

    def signed_by_source(self, secret: str) -> bool:
        """Whether the last report's MAC checks out under the source's ``audit_anchor_secret``."""
        held = self.checkpoint
        if held is None:
            return False
        try:
            rows = [(seq, self.hashes[seq]) for seq in range(held.first, held.seq + 1)]
        except KeyError:
            return False
        return hmac.compare_digest(anchor_mac(secret, held.source, rows), held.mac)


async def read_checkpoint(text: str, jwks: JwksCache | None, issuer: str | None) -> Checkpoint:
    """The checkpoint in a compact JWS; its signature checked when ``jwks`` is given."""
    try:
        signed = jws.extract_compact(text.strip().encode("ascii"))
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise AnchorUnavailable("the checkpoint is not a compact JWS") from None
    header = signed.headers()
    alg, kid = header.get("alg"), header.get("kid")
    if header.get("typ") != CHECKPOINT_TYPE or alg != "ES256" or not isinstance(kid, str):
        raise AnchorUnavailable(f"not an audit checkpoint (typ must be {CHECKPOINT_TYPE})")
    if jwks is not None:
        try:
            key = await jwks.key(kid)
            registry = jws.JWSRegistry(algorithms=["ES256"], strict_check_header=False)
            jws.validate_compact(signed, key, registry=registry)
        except (JoseError, TokenError) as exc:
            raise AnchorUnavailable(
                f"the checkpoint's signature does not verify against the hub's keys ({exc})"
            ) from None
    try:
        claims = json.loads(signed.payload or b"")
    except ValueError:
        raise AnchorUnavailable("the checkpoint's payload is not JSON") from None
    if not isinstance(claims, dict):
        raise AnchorUnavailable("the checkpoint's payload is not an object")
    if issuer is not None and claims.get("iss") != issuer:
        raise AnchorUnavailable(f"the checkpoint names issuer {claims.get('iss')!r}, not {issuer}")
    return Checkpoint.from_claims(claims, signed=jwks is not None)


async def fetch_witness(http: httpx.AsyncClient, hub_url: str, source: str) -> Witness:
    """Every hash the hub witnessed of ``source``'s chain, and its checkpoint, signature checked."""
    base = hub_url.rstrip("/")
    jwks = JwksCache(f"{base}/.well-known/jwks.json", http)
    hashes: dict[int, str] = {}
    checkpoint: Checkpoint | None = None
    after = 0
    while True:
        try:
            response = await http.get(
                f"{base}{ANCHORS_PATH}/{source}", params={"after": after}, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise AnchorUnavailable(
                f"cannot reach the hub at {base}: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code != 200:
            raise AnchorUnavailable(
                f"the hub at {base} answered {response.status_code} for {ANCHORS_PATH}/{source}"
            )
        try:
            page = response.json()
            rows = [(int(seq), str(digest)) for seq, digest in page["hashes"]]
            token = page["checkpoint"]
            following = page["next"]
        except (ValueError, KeyError, TypeError):
            raise AnchorUnavailable(
                f"{base}{ANCHORS_PATH}/{source} is not an anchor list"
            ) from None
        if checkpoint is None and token is not None:
            checkpoint = await read_checkpoint(str(token), jwks, None)
        hashes.update(rows)
        if following is None:
            break
        after = int(following)
    if checkpoint is not None and hashes.get(checkpoint.seq) != checkpoint.hash:
        raise AnchorUnavailable("the hub's witnessed hashes disagree with its signed checkpoint")
    return Witness(checkpoint, hashes)
