"""Reading CAP alerts from where they are published: a URL or a directory.

A source is a single CAP message or an ATOM/RSS index feed. Feed entries are
read one at a time, so one bad entry costs only itself; entries that embed
the message are read in place, others are followed by their link (only to the
feed's own host unless allowed, at most ``max_entries``, each within the size
limit). Every fetch is conditional: a URL or file that has not changed since
the last read is not read again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, tostring

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Batch, HttpFetcher, Keyed, Problem, Validators, problem_of
from adapters.cap._xml import (
    DEFAULT_MAX_ALERT_BYTES,
    DEFAULT_MAX_FEED_BYTES,
    parse_untrusted,
    split_tag,
)
from adapters.cap.codec import alert_from_element
from adapters.cap.errors import CapError, XmlError, XmlTooLarge
from adapters.cap.feed import ATOM_NAMESPACE, FeedEntry, parse_feed
from schema.records import AlertCreate

__all__ = ["CapClient", "CapRead", "CapSettings", "KnownValidators"]

log = logging.getLogger("linli.adapters.cap")

KnownValidators = Callable[[str], Awaitable[Validators | None]]
"""Looks up the validators of the last read of a URL or file."""

_FILE_SUFFIXES = frozenset({".xml", ".cap", ".atom", ".rss"})


class CapSettings(BaseSettings):
    """Where the CAP adapter reads alerts (env ``LINLI_ADAPTER_CAP_*`` or TOML ``[cap]``)."""

    model_config = SettingsConfigDict(env_prefix="LINLI_ADAPTER_CAP_", extra="ignore")

    sources: list[str] = Field(
        default_factory=list,
        description="URLs (http/https) of CAP messages or ATOM/RSS feeds, or local directories",
    )
    interval_s: float = Field(60.0, gt=0, description="Seconds between polls")
    timeout_s: float = Field(10.0, gt=0, description="Timeout of each HTTP request")
    poll_timeout_s: float = Field(120.0, gt=0, description="Timeout of one whole poll")
    max_entries: int = Field(200, ge=1, le=10_000, description="Most feed entries read per poll")
    max_feed_bytes: int = Field(DEFAULT_MAX_FEED_BYTES, ge=1024)
    max_alert_bytes: int = Field(DEFAULT_MAX_ALERT_BYTES, ge=1024)
    follow_other_hosts: bool = Field(
        False, description="Follow feed entry links to hosts other than the feed's own"
    )


@dataclass(slots=True)
class CapRead:
    """The alerts of one read, and the validators to save once they are stored."""

    batch: Batch[AlertCreate] = field(default_factory=Batch)
    validators: dict[str, Validators] = field(default_factory=dict)
    sources_failed: int = 0


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _file_validators(path: Path) -> Validators:
    stat = path.stat()
    return Validators(etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')


def _message_key(alert: AlertCreate) -> str:
    return hashlib.sha256(
        f"{alert.sender}\x1f{alert.identifier}\x1f{alert.sent.isoformat()}".encode()
    ).hexdigest()


class CapClient:
    """Reads every configured source; one client per adapter, over a shared HTTP client."""

    def __init__(self, fetcher: HttpFetcher, settings: CapSettings) -> None:
        self.fetcher = fetcher
        self.settings = settings

    async def read(self, known: KnownValidators) -> CapRead:
        """Read every source; a failing source is a problem, the others go on."""
        read = CapRead()
        for source in self.settings.sources:
            try:
                if _is_url(source):
                    await self._read_url(source, known, read, feed_host=None)
                else:
                    await self._read_directory(Path(source), known, read)
            except Exception as error:  # one source never stops the others
                read.sources_failed += 1
                read.batch.problems.append(problem_of(source, error))
                log.warning("CAP source %s failed: %s", source, error)
        return read

    async def _read_url(
        self, url: str, known: KnownValidators, read: CapRead, *, feed_host: str | None
    ) -> None:
        limit = self.settings.max_alert_bytes if feed_host else self.settings.max_feed_bytes
        fetched = await self.fetcher.get(url, validators=await known(url), max_bytes=limit)
        if fetched.not_modified:
            return
        read.validators[url] = fetched.validators
        links = self._read_document(fetched.body, url, read, top_level=feed_host is None)
        host = urlsplit(url).hostname
        for where, link in links:
            if not _is_url(link):
                read.batch.problems.append(
                    Problem(where, "CAP_LINK_REFUSED", f"{link[:200]} is not an http(s) URL")
                )
                continue
            if not self.settings.follow_other_hosts and urlsplit(link).hostname != host:
                read.batch.problems.append(
                    Problem(where, "CAP_LINK_REFUSED", f"{link[:200]} is on another host")
                )
                continue
            try:
                await self._read_url(link, known, read, feed_host=host)
            except Exception as error:  # a bad message costs only itself
                read.batch.problems.append(problem_of(link, error))

    async def _read_directory(self, directory: Path, known: KnownValidators, read: CapRead) -> None:
        if not directory.is_dir():  # noqa: ASYNC240 - a local listing, small and quick
            raise FileNotFoundError(f"{directory} is not a directory")
        for path in sorted(directory.iterdir()):  # noqa: ASYNC240
            if path.suffix.lower() not in _FILE_SUFFIXES or not path.is_file():
                continue
            where = str(path)
            validators = _file_validators(path)
            if await known(where) == validators:
                continue
            read.validators[where] = validators
            try:
                if path.stat().st_size > self.settings.max_feed_bytes:
                    raise XmlTooLarge(size=path.stat().st_size, limit=self.settings.max_feed_bytes)
                links = self._read_document(path.read_bytes(), None, read, top_level=True)
            except Exception as error:  # a bad file costs only itself
                read.batch.problems.append(problem_of(where, error))
                continue
            for link_where, _ in links:
                read.batch.problems.append(
                    Problem(link_where, "CAP_LINK_REFUSED", "a directory feed must embed alerts")
                )

    def _read_document(
        self, data: bytes, url: str | None, read: CapRead, *, top_level: bool
    ) -> list[tuple[str, str]]:
        """Add the alerts of one document to ``read``; the links it wants followed."""
        where = url or "document"
        root = parse_untrusted(data, max_bytes=self.settings.max_feed_bytes)
        if split_tag(root.tag)[1] == "alert":
            if len(data) > self.settings.max_alert_bytes:
                raise XmlTooLarge(size=len(data), limit=self.settings.max_alert_bytes)
            alert = alert_from_element(root)
            read.batch.records.append(Keyed(_message_key(alert), alert))
            return []
        if not top_level:
            raise CapError(f"{where}: a feed entry links to another feed, not a CAP message")
        links: list[tuple[str, str]] = []
        for index, entry_where, entry in self._entries(root, url, where, read.batch.problems):
            if entry is None:
                continue
            if index >= self.settings.max_entries:
                read.batch.problems.append(
                    Problem(
                        entry_where,
                        "CAP_TOO_MANY_ENTRIES",
                        f"only the first {self.settings.max_entries} entries are read",
                    )
                )
                break
            if entry.alert is not None:
                read.batch.records.append(Keyed(_message_key(entry.alert), entry.alert))
            elif entry.link is not None:
                links.append((entry_where, entry.link))
            else:
                read.batch.problems.append(
                    Problem(entry_where, "CAP_NO_MESSAGE", "the entry has no CAP message or link")
                )
        return links

    def _entries(
        self, root: Element, url: str | None, where: str, problems: list[Problem]
    ) -> list[tuple[int, str, FeedEntry | None]]:
        """Each entry of a feed parsed on its own, so a bad one is only a problem."""
        namespace, name = split_tag(root.tag)
        if namespace == ATOM_NAMESPACE and name == "feed":
            items = root.findall(f"{{{ATOM_NAMESPACE}}}entry")
            wrap: Callable[[Element], Element] = lambda item: _wrapped(root.tag, None, item)  # noqa: E731
            label = "entry"
        elif namespace == "" and name == "rss":
            channel = root.find("channel")
            items = [] if channel is None else channel.findall("item")
            wrap = lambda item: _wrapped("rss", "channel", item)  # noqa: E731
            label = "item"
        else:
            # parse_feed says exactly what is wrong with the document.
            parse_feed(tostring(root), base_url=url, max_bytes=self.settings.max_feed_bytes)
            return []
        entries: list[tuple[int, str, FeedEntry | None]] = []
        for index, item in enumerate(items[: self.settings.max_entries + 1]):
            entry_where = f"{where}#{label}[{index + 1}]"
            try:
                parsed = parse_feed(
                    tostring(wrap(item)),
                    base_url=url,
                    max_bytes=self.settings.max_feed_bytes,
                    max_alert_bytes=self.settings.max_alert_bytes,
                )
            except XmlError as error:
                problems.append(problem_of(entry_where, error))
                entries.append((index, entry_where, None))
                continue
            entries.append((index, entry_where, parsed[0] if parsed else None))
        return entries


def _wrapped(tag: str, inner: str | None, item: Element) -> Element:
    outer = Element(tag)
    holder = outer if inner is None else Element(inner)
    if inner is not None:
        outer.append(holder)
    holder.append(item)
    return outer
