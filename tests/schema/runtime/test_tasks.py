"""The background-task helper: tasks live as long as their block; loops outlive bad rounds."""

from __future__ import annotations

import asyncio
import logging

import pytest

from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat


async def test_tasks_are_cancelled_and_awaited_when_the_block_ends() -> None:
    started = asyncio.Event()
    cleaned_up: list[str] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.append("forever")

    async with BackgroundTasks("test") as tasks:
        task = tasks.start(forever())
        await started.wait()
    assert task.cancelled()
    assert cleaned_up == ["forever"]  # its finally ran before the block returned


async def test_a_crashed_task_is_logged_and_the_block_still_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash() -> None:
        raise RuntimeError("boom")

    async with BackgroundTasks("crasher") as tasks:
        task = tasks.start(crash())
        await asyncio.wait([task])
    assert "background task crasher crashed" in caplog.text
    assert "boom" in caplog.text


async def test_repeat_outlives_a_failing_round_and_wakes_early(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    rounds: list[int] = []
    wake = asyncio.Event()
    third = asyncio.Event()

    async def once() -> float | None:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            raise RuntimeError("bad round")
        if len(rounds) == 3:
            third.set()
        return None

    def armed() -> asyncio.Event:
        wake.clear()
        return wake

    async with BackgroundTasks("loop") as tasks:
        tasks.start(repeat("loop", once, interval_s=0.01))
        await asyncio.wait_for(third.wait(), 5)
    assert "loop round failed" in caplog.text  # logged, and the loop went on

    # A long interval: only a wake starts the next round.
    rounds.clear()
    third.clear()
    async with BackgroundTasks("woken") as tasks:
        tasks.start(repeat("woken", once, interval_s=3600, wake=armed))
        while len(rounds) < 3:
            await asyncio.sleep(0.01)
            wake.set()
    assert rounds[:3] == [1, 2, 3]


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        delays = {backoff_s(attempts, base_s=2.0, max_s=60.0) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, delays)
        assert len(delays) > 1
