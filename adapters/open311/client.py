"""The Open311 GeoReport v2 client: read service requests, post new ones, follow tokens."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import HttpFetcher
from adapters.errors import UpstreamBadResponse, UpstreamPending, UpstreamRefused
from adapters.open311.codec import read_list
from schema.enums import IncidentCategory

__all__ = ["Open311Client", "Open311Settings"]


class Open311Settings(BaseSettings):
    """One GeoReport v2 endpoint (env ``LINLI_ADAPTER_OPEN311_*`` or TOML ``[open311]``)."""

    model_config = SettingsConfigDict(env_prefix="LINLI_ADAPTER_OPEN311_", extra="ignore")

    endpoint: str = Field("http://127.0.0.1:8311", description="Base URL of the GeoReport API")
    api_key: SecretStr = Field(SecretStr(""), description="api_key for POST requests")
    jurisdiction_id: str | None = Field(None, description="jurisdiction_id, if the server needs it")
    format: Literal["json", "xml"] = Field("json", description="Answers in JSON or XML")
    interval_s: float = Field(60.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    poll_timeout_s: float = Field(120.0, gt=0)
    max_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    window_days: float = Field(7.0, gt=0, description="Date range asked for per request")
    first_since_days: float = Field(
        30.0, gt=0, description="Look-back: every poll reads requests filed this many days back"
    )
    page_limit: int = Field(1000, ge=1, description="The server's cap on requests per answer")
    category_by_service: dict[str, IncidentCategory] = Field(
        default_factory=dict, description="GB/T 35561 class of each service_code"
    )
    default_category: IncidentCategory = IncidentCategory.ACCIDENT
    flag_services: dict[str, str] = Field(
        default_factory=dict, description="risk category code -> service_code to push flags to"
    )
    token_attempts: int = Field(5, ge=1, description="Reads of tokens/{token} before giving up")
    token_wait_s: float = Field(0.5, ge=0, description="Pause between token reads")


def _w3c(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


class Open311Client:
    """One client per GeoReport v2 endpoint, over the service's shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, settings: Open311Settings) -> None:
        self.settings = settings
        self.fetcher = HttpFetcher(http, timeout_s=settings.timeout_s, max_bytes=settings.max_bytes)
        self.base = settings.endpoint.rstrip("/")

    def _params(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.settings.jurisdiction_id:
            params["jurisdiction_id"] = self.settings.jurisdiction_id
        return params

    async def _get_list(
        self, path: str, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        url = f"{self.base}/{path}.{self.settings.format}"
        fetched = await self.fetcher.get(url, params=self._params(params))
        return read_list(fetched.body, fetched.content_type, where=url)

    async def services(self) -> list[dict[str, Any]]:
        """``GET services``: the service types the system takes."""
        return await self._get_list("services")

    async def requests(
        self,
        start: datetime,
        end: datetime,
        *,
        status: str | None = None,
        service_code: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET requests`` between ``start`` and ``end``; a full answer is split in halves.

        Servers cap how many requests one answer holds (``page_limit``), so a
        range that comes back full is asked for again as two halves.
        """
        params = {"start_date": _w3c(start), "end_date": _w3c(end)}
        if status:
            params["status"] = status
        if service_code:
            params["service_code"] = service_code
        found = await self._get_list("requests", params)
        if len(found) < self.settings.page_limit or end - start <= timedelta(minutes=1):
            return found
        middle = start + (end - start) / 2
        first = await self.requests(start, middle, status=status, service_code=service_code)
        second = await self.requests(middle, end, status=status, service_code=service_code)
        unique = {str(r.get("service_request_id")): r for r in [*first, *second]}
        return list(unique.values())

    async def request(self, request_id: str) -> dict[str, Any]:
        """``GET requests/{id}``: one service request."""
        found = await self._get_list(f"requests/{request_id}")
        if not found:
            raise UpstreamBadResponse(f"requests/{request_id}: an empty answer")
        return found[0]

    async def post_request(self, form: dict[str, str]) -> tuple[str | None, str | None]:
        """``POST requests``: (service_request_id, token); the server gives one of them."""
        url = f"{self.base}/requests.{self.settings.format}"
        body = {**self._params(form), "api_key": self.settings.api_key.get_secret_value()}
        try:
            fetched = await self.fetcher.post_form(url, body)
        except UpstreamRefused as error:
            raw = str(error.details.get("body", "")).encode()
            try:
                errors = read_list(raw, "application/json", where=url)
            except UpstreamBadResponse:
                errors = []
            raise UpstreamRefused(
                f"POST {url} was refused: "
                + "; ".join(f"{e.get('code')} {e.get('description')}" for e in errors),
                status=error.details.get("status"),
                errors=errors,
            ) from error
        answer = read_list(fetched.body, fetched.content_type, where=url)
        if not answer:
            raise UpstreamBadResponse(f"POST {url}: an empty answer")
        first = answer[0]
        request_id = first.get("service_request_id")
        token = first.get("token")
        if not request_id and not token:
            raise UpstreamBadResponse(f"POST {url}: neither service_request_id nor token")
        return (str(request_id) if request_id else None, str(token) if token else None)

    async def request_id_for_token(self, token: str) -> str:
        """``GET tokens/{token}`` until the request has an id (bounded), else UPSTREAM_PENDING."""
        for attempt in range(self.settings.token_attempts):
            found = await self._get_list(f"tokens/{token}")
            request_id = found[0].get("service_request_id") if found else None
            if request_id:
                return str(request_id)
            if attempt + 1 < self.settings.token_attempts:
                await asyncio.sleep(self.settings.token_wait_s)
        raise UpstreamPending(f"token {token} has no service_request_id yet", token=token)
