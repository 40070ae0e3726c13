"""Background work of a service: tasks that live as long as a block, and loops that repeat rounds.

``BackgroundTasks`` starts tasks, logs the ones that crash, and cancels and
awaits every one still running when its block ends. ``repeat`` runs a round
forever: a round that fails is logged and the loop goes on; between rounds it
waits until woken or until the round's (or the default) interval has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, NoReturn

__all__ = ["BackgroundTasks", "Round", "repeat"]

log = logging.getLogger("linli.tasks")

Round = Callable[[], Awaitable[float | None]]
"""One round of a loop; it may say how many seconds to wait before the next (None: the default)."""


class BackgroundTasks:
    """Tasks that run for the life of an ``async with`` block, then are cancelled and awaited."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background until it ends or the block does."""
        task = asyncio.create_task(coroutine, name=self.name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s crashed", self.name, exc_info=task.exception())

    async def __aenter__(self) -> BackgroundTasks:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # logged by _done
                await task


async def repeat(
    name: str,
    once: Round,
    *,
    interval_s: float,
    wake: Callable[[], asyncio.Event] | None = None,
) -> NoReturn:
    """Run ``once`` forever; ``wake()`` (taken before each round) ends a wait early."""
    while True:
        waiter = wake() if wake is not None else asyncio.Event()
        wait_s: float | None = None
        try:
            wait_s = await once()
        except Exception:  # the loop must outlive one bad round
            log.exception("%s round failed", name)
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
        # arrives just as the event is set, and the loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s if wait_s is None else wait_s):
                await waiter.wait()
