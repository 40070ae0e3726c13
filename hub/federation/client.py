"""One pooled HTTP client for every upstream source, with hard limits on each call."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import orjson

from hub.federation.errors import (
    SourceDenied,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    SourceUrlNotAllowed,
)
from schema.runtime.outbound import OutboundPolicy, OutboundTransport, UrlNotAllowed

__all__ = ["SourceClient"]

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_JSON = {"Content-Type": "application/json"}


class SourceClient:
    """Calls sources' ``/graphql`` and well-known endpoints through one aiohttp-backed pool.

    The transport was chosen by measurement: on a 2-core machine 100
    concurrent calls took 414 ms with httpx's default transport and 29 ms with the
    aiohttp transport. Redirects are never followed: a source that redirects is
    answering for someone else. Every call passes ``outbound`` again, a name's
    addresses as the connection resolves them (``SourceUrlNotAllowed`` if not).
    """

    def __init__(
        self, *, outbound: OutboundPolicy, max_response_bytes: int = MAX_RESPONSE_BYTES
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.http = httpx.AsyncClient(
            transport=OutboundTransport(outbound, max_connections=500),
            follow_redirects=False,
            headers={"User-Agent": "linli-hub"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get_json(self, url: str, *, timeout_s: float) -> Any:
        """GET a JSON document."""
        return await self._call("GET", url, timeout_s=timeout_s)

    async def graphql(
        self,
        base_url: str,
        query: str,
        variables: dict[str, Any],
        *,
        token: str,
        timeout_s: float,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """POST a GraphQL request; the parsed response object (``data``/``errors``)."""
        headers = {"Authorization": f"Bearer {token}"}
        if purpose:
            headers["X-Linli-Purpose"] = purpose
        body = await self._call(
            "POST",
            f"{base_url}/graphql",
            timeout_s=timeout_s,
            json_body={"query": query, "variables": variables},
            headers=headers,
        )
        if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
            raise SourceError("the source's answer is not a GraphQL response")
        return body

    async def _call(
        self,
        method: str,
        url: str,
        *,
        timeout_s: float,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                request = self.http.build_request(
                    method,
                    url,
                    content=None if json_body is None else orjson.dumps(json_body),
                    headers=headers if json_body is None else {**(headers or {}), **_JSON},
                    timeout=timeout_s,
                )
                response = await self.http.send(request, stream=True)
                try:
                    if response.is_redirect:
                        raise SourceError(
                            f"the source redirected ({response.status_code}); not followed"
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                        raise SourceError("the source's answer is over the size cap")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            raise SourceError("the source's answer is over the size cap")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except UrlNotAllowed as exc:
            raise SourceUrlNotAllowed(exc.message) from None
        except TimeoutError as exc:
            raise SourceTimeout(f"no answer within {timeout_s:g} s") from exc
        except httpx.TimeoutException as exc:
            # The aiohttp transport reports a refused connection as a connect timeout.
            if isinstance(exc.__cause__, aiohttp.ClientConnectionError) and not isinstance(
                exc.__cause__, aiohttp.ServerTimeoutError
            ):
                raise SourceUnavailable("cannot reach the source") from exc
            raise SourceTimeout(f"no answer within {timeout_s:g} s") from exc
        except httpx.TransportError as exc:
            raise SourceUnavailable(f"cannot reach the source: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise SourceError(f"the source answered HTTP {response.status_code}")
        if response.status_code in (401, 403):
            reason = _refusal_reason(b"".join(chunks))
            raise SourceDenied(
                f"the source refused the hub's token ({response.status_code}"
                f"{' ' + reason if reason else ''})"
            )
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise SourceError("the source's answer is not valid JSON") from exc


def _refusal_reason(body: bytes) -> str | None:
    """The stable ``reason`` (``FEDERATION_LOOP`` ...) of a source's 401 or 403, if it gave one."""
    try:
        errors = orjson.loads(body).get("errors")
        reason = errors[0]["extensions"].get("reason") or errors[0]["extensions"].get("code")
    except (orjson.JSONDecodeError, AttributeError, IndexError, KeyError, TypeError):
        return None
    return reason if isinstance(reason, str) and reason.isupper() and len(reason) < 40 else None
