"""What every adapter is made of: capability protocols, status, backoff, polling, HTTP, settings.

An adapter implements one ``Protocol`` per capability it has (``AlertReader``,
``IncidentReader``, ``ResourceReader``, ``FlagSink``). Readers return a
``Batch``: the records that mapped, keyed by the upstream system's own id, and
one ``Problem`` per input that did not, so one bad document never stops a feed.
``PollLoop`` calls a poll function on an interval, backs off with jitter
(``schema.runtime.retry.backoff_s``) when it fails, and keeps an ``AdapterStatus``
(ok, degraded, down) that the adapter service shows in ``/readyz`` and
``/.well-known/linli-node``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
)

from adapters.errors import (
    AdapterError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnavailable,
)
from schema.errors import LinliError
from schema.records import AlertCreate, IncidentCreate, ResourceCreate, RiskFlagBase
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.storage import utcnow

__all__ = [
    "ADAPTER_ENTRY_POINTS",
    "PENDING_PREFIX",
    "AdapterHealth",
    "AdapterStatus",
    "AlertReader",
    "Batch",
    "ExternalStatusChange",
    "Fetched",
    "FlagSink",
    "FlagSinkFactory",
    "HttpFetcher",
    "IncidentReader",
    "Keyed",
    "PollLoop",
    "PollReport",
    "Problem",
    "ResourceReader",
    "Validators",
    "load_section_settings",
    "problem_of",
]

log = logging.getLogger("linli.adapters")

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)

ADAPTER_ENTRY_POINTS = "linli.adapters"
"""The entry-point group that names each adapter's ``FlagSinkFactory`` (see pyproject.toml)."""

PENDING_PREFIX = "token:"
"""An external id that is not final yet: ``FlagSink.resolve`` turns it into the final one."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One input an adapter could not use: where it was, a stable code, and why."""

    where: str
    code: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "code": self.code, "reason": self.reason}


def problem_of(where: str, error: Exception) -> Problem:
    """The problem an error stands for (its stable code, or ``INTERNAL`` for anything else)."""
    if isinstance(error, LinliError):
        return Problem(where, error.extensions["code"], error.message)
    return Problem(where, "INTERNAL", f"{type(error).__name__}: {error}")


@dataclass(frozen=True, slots=True)
class Keyed(Generic[T]):
    """A record and the upstream system's own key for it (what makes re-reads idempotent)."""

    key: str
    record: T


@dataclass(slots=True)
class Batch(Generic[T]):
    """What one read produced: records that mapped, problems with the rest."""

    records: list[Keyed[T]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    not_modified: bool = False
    """The upstream said nothing changed (HTTP 304): there is nothing to store."""


class AlertReader(Protocol):
    """Reads CAP alerts from an upstream system."""

    async def read_alerts(self) -> Batch[AlertCreate]:
        """Alerts published since the last read (all of them the first time)."""
        ...


class IncidentReader(Protocol):
    """Reads incidents (service requests, hazard events) from an upstream system."""

    async def read_incidents(self, since: datetime | None) -> Batch[IncidentCreate]:
        """Incidents changed since ``since`` (all the system offers when None)."""
        ...


class ResourceReader(Protocol):
    """Reads stocks of relief resources (warehouse inventories) from an upstream system."""

    async def read_resources(self) -> Batch[ResourceCreate]:
        """The current stock, one record per warehouse and item."""
        ...


@dataclass(frozen=True, slots=True)
class ExternalStatusChange:
    """A status the upstream system gave a pushed flag (as a flag status and in its own words)."""

    external_id: str
    status: str
    at: datetime
    note: str = ""
    upstream_status: str = ""
    """The upstream system's own word for the status (shown in the flag's timeline)."""


class FlagSink(Protocol):
    """Pushes a confirmed risk flag into an upstream system and reads back what happens to it."""

    async def push(self, flag_id: str, flag: RiskFlagBase) -> str:
        """The upstream's id for flag ``flag_id`` (``PENDING_PREFIX...`` until it is final)."""
        ...

    async def resolve(self, external_id: str) -> str:
        """The final id behind a pending one (``UpstreamPending`` while there is none)."""
        ...

    async def status_changes(
        self, external_ids: Sequence[str], since: datetime | None
    ) -> list[ExternalStatusChange]:
        """Status changes of pushed flags after ``since``, oldest first."""
        ...


class FlagSinkFactory(Protocol):
    """Builds the ``FlagSink`` of one configured upstream system over the caller's HTTP client."""

    def __call__(self, http: httpx.AsyncClient, options: Mapping[str, Any]) -> FlagSink:
        """A sink for the system that ``options`` (the adapter's own settings) describe."""
        ...


class AdapterHealth(enum.StrEnum):
    """How an adapter's upstream is doing."""

    OK = "ok"
    DEGRADED = "degraded"  # the last poll failed or some inputs were refused
    DOWN = "down"  # several polls in a row failed, or none succeeded yet


class AdapterStatus:
    """The health of one adapter's upstream, with the last error and since when."""

    def __init__(self, name: str, *, down_after: int = 3, max_problems: int = 20) -> None:
        self.name = name
        self.down_after = down_after
        self.max_problems = max_problems
        self.health = AdapterHealth.DOWN
        self.since: datetime = utcnow()
        self.last_error: dict[str, str] | None = {
            "code": "NOT_POLLED",
            "message": "no poll has finished yet",
            "at": self.since.isoformat(),
        }
        self.last_success_at: datetime | None = None
        self.consecutive_failures = 0
        self.problems: list[Problem] = []
        self.polls = 0

    def _move(self, health: AdapterHealth) -> None:
        if health is not self.health:
            log.info("adapter %s is %s", self.name, health.value, extra={"adapter": self.name})
            self.health = health
            self.since = utcnow()

    def succeeded(self, problems: Sequence[Problem] = ()) -> None:
        """A poll finished; refused inputs make the adapter degraded, not down."""
        self.polls += 1
        self.consecutive_failures = 0
        self.last_success_at = utcnow()
        self.problems = list(problems)[: self.max_problems]
        if problems:
            first = problems[0]
            self.last_error = {
                "code": first.code,
                "message": f"{first.where}: {first.reason}",
                "at": self.last_success_at.isoformat(),
            }
            self._move(AdapterHealth.DEGRADED)
        else:
            self._move(AdapterHealth.OK)

    def failed(self, error: Exception) -> None:
        """A poll failed as a whole (upstream unreachable, timeout, ...)."""
        self.polls += 1
        self.consecutive_failures += 1
        problem = problem_of(self.name, error)
        self.last_error = {
            "code": problem.code,
            "message": problem.reason,
            "at": utcnow().isoformat(),
        }
        never_worked = self.last_success_at is None
        if never_worked or self.consecutive_failures >= self.down_after:
            self._move(AdapterHealth.DOWN)
        else:
            self._move(AdapterHealth.DEGRADED)

    def as_dict(self) -> dict[str, Any]:
        """The status as the well-known document and ``/readyz`` show it."""
        return {
            "status": self.health.value,
            "since": self.since.isoformat(),
            "last_error": self.last_error,
            "last_success_at": self.last_success_at and self.last_success_at.isoformat(),
            "consecutive_failures": self.consecutive_failures,
            "problems": [p.as_dict() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll stored."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: tuple[Problem, ...] = ()
    not_modified: bool = False


class PollLoop:
    """Calls ``poll`` every ``interval_s``; failures back off; every call has a timeout."""

    def __init__(
        self,
        name: str,
        poll: Callable[[], Awaitable[PollReport]],
        *,
        interval_s: float,
        timeout_s: float,
        status: AdapterStatus | None = None,
    ) -> None:
        self.name = name
        self._poll = poll
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.retry_base_s = min(interval_s, 5.0)
        self.retry_max_s = max(interval_s, 300.0)
        self.status = status or AdapterStatus(name)
        self.last_report: PollReport | None = None
        self._wake = asyncio.Event()

    async def poll_once(self) -> PollReport | None:
        """Poll now; the status records the outcome; None when the poll failed."""
        try:
            async with asyncio.timeout(self.timeout_s):
                report = await self._poll()
        except TimeoutError:
            error = UpstreamTimeout(f"poll took longer than {self.timeout_s:g} s")
            log.warning("adapter %s poll timed out", self.name, extra={"adapter": self.name})
            self.status.failed(error)
            return None
        except Exception as error:  # a poll must never end the loop
            if isinstance(error, AdapterError | LinliError):
                log.warning("adapter %s poll failed: %s", self.name, error)
            else:
                log.exception("adapter %s poll failed", self.name)
            self.status.failed(error)
            return None
        # An unchanged upstream still holds the inputs the last import refused.
        self.status.succeeded(self.status.problems if report.not_modified else report.problems)
        self.last_report = report
        return report

    def wake(self) -> None:
        """Poll at once instead of waiting out the interval."""
        self._wake.set()

    def next_delay(self) -> float:
        """The interval, or a backoff with jitter after failures in a row."""
        failures = self.status.consecutive_failures
        if not failures:
            return self.interval_s
        return backoff_s(failures, base_s=self.retry_base_s, max_s=self.retry_max_s)

    def _armed(self) -> asyncio.Event:
        self._wake.clear()
        return self._wake

    async def _round(self) -> float:
        await self.poll_once()
        return self.next_delay()

    async def run(self) -> None:
        """Poll until cancelled."""
        await repeat(f"poll-{self.name}", self._round, interval_s=self.interval_s, wake=self._armed)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PollLoop]:
        """Run the loop in the background for the life of the block."""
        async with BackgroundTasks(f"poll-{self.name}") as tasks:
            tasks.start(self.run())
            yield self


@dataclass(frozen=True, slots=True)
class Validators:
    """What a conditional request sends back: the last ``ETag`` and ``Last-Modified``."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched document, or ``not_modified`` when the server answered 304."""

    url: str
    body: bytes
    content_type: str
    validators: Validators
    not_modified: bool = False


class HttpFetcher:
    """GETs and POSTs to one upstream over a shared client: timeouts, size limits, error codes."""

    def __init__(self, http: httpx.AsyncClient, *, timeout_s: float, max_bytes: int) -> None:
        self.http = http
        self.timeout = httpx.Timeout(timeout_s)
        self.max_bytes = max_bytes

    async def get(
        self,
        url: str,
        *,
        validators: Validators | None = None,
        params: dict[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Fetched:
        """GET ``url``, conditionally when ``validators`` are given; 304 gives ``not_modified``."""
        headers = validators.headers() if validators else {}
        return await self._send("GET", url, headers=headers, params=params, max_bytes=max_bytes)

    async def post_form(self, url: str, form: dict[str, str]) -> Fetched:
        """POST a form (never retried: the caller decides)."""
        return await self._send("POST", url, data=form)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Fetched:
        limit = max_bytes or self.max_bytes
        request = self.http.build_request(
            method, url, headers=headers, params=params, data=data, timeout=self.timeout
        )
        try:
            response = await self.http.send(request, stream=True, follow_redirects=True)
        except httpx.TimeoutException as error:
            raise UpstreamTimeout(f"{method} {url}: no answer in time", url=url) from error
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(f"{method} {url}: {type(error).__name__}", url=url) from error
        try:
            body = await _read_limited(response, url, limit)
        finally:
            await response.aclose()
        got = Validators(response.headers.get("etag"), response.headers.get("last-modified"))
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code == 304:
            return Fetched(str(response.url), b"", content_type, got, not_modified=True)
        if response.status_code >= 500:
            raise UpstreamUnavailable(
                f"{method} {url} answered {response.status_code}",
                url=url,
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise UpstreamRefused(
                f"{method} {url} answered {response.status_code}",
                url=url,
                status=response.status_code,
                body=body[:2000].decode("utf-8", "replace"),
            )
        return Fetched(str(response.url), body, content_type, got)


async def _read_limited(response: httpx.Response, url: str, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamTooLarge(url=url, limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise UpstreamTooLarge(url=url, limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def load_section_settings(
    cls: type[S], config_file: Path | None, section: str, **overrides: Any
) -> S:
    """An adapter's settings from, strongest first: ``overrides``, its env prefix, ``[section]``.

    The TOML file is the service's ``--config`` file; each adapter reads its own table.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    table: dict[str, Any] = {}
    if config_file is not None:
        import tomllib

        with config_file.open("rb") as file:
            document = tomllib.load(file)
        found = document.get(section, {})
        if not isinstance(found, dict):
            raise ValueError(f"[{section}] in {config_file} is not a table")
        table = found

    class FromSection(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, table))

    settings: S = FromSection(**given)
    return settings
