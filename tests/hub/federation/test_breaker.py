"""The circuit breaker as a state machine, on an injected clock."""

from __future__ import annotations

from hub.federation.breaker import Breaker, BreakerState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, *, threshold: int = 3, cooldown_s: float = 10.0) -> Breaker:
    breaker = Breaker(threshold, cooldown_s, clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_it_opens_after_threshold_failures_in_a_row_only() -> None:
    clock = Clock()
    breaker = Breaker(3, 10.0, clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # the run is broken
    breaker.failed()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == 1000.0
    assert not breaker.allow()


def test_refused_calls_do_not_extend_the_cool_down() -> None:
    clock = Clock()
    breaker = opened(clock)
    for _ in range(99):  # continuous traffic, every 0.1 s, all refused
        clock.now += 0.1
        assert not breaker.allow()
    assert breaker.opened_at == 1000.0
    assert breaker.state is BreakerState.OPEN
    clock.now = 1010.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_a_late_failure_while_open_does_not_extend_the_cool_down() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 5
    breaker.failed()  # a call that went out before the breaker opened
    assert breaker.opened_at == 1000.0
    clock.now = 1010.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_after_the_cool_down_exactly_one_probe_goes_out() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    for _ in range(5):  # concurrent callers while the probe is in flight
        clock.now += 0.5
        assert not breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


def test_the_probes_success_closes_the_breaker() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0
    assert breaker.opened_at is None
    assert all(breaker.allow() for _ in range(5))
    breaker.failed()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED  # counting starts again from zero


def test_the_probes_failure_opens_it_again_for_a_new_cool_down() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 12
    assert breaker.allow()
    clock.now += 1  # the probe takes a second to fail
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == 1013.0
    clock.now = 1022.9
    assert not breaker.allow()
    clock.now = 1023.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the next probe
    assert not breaker.allow()


def test_an_abandoned_probe_frees_the_slot_without_a_verdict() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    assert breaker.allow()
    breaker.abandoned()  # the probe was cancelled
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.opened_at == 1000.0
    assert breaker.allow()  # the next caller probes
    assert not breaker.allow()


def test_an_abandoned_call_while_closed_is_not_a_failure() -> None:
    breaker = Breaker(1, 10.0, Clock())
    assert breaker.allow()
    breaker.abandoned()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0
