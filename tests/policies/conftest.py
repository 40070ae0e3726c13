"""Fixtures for the policy engine tests."""

from __future__ import annotations

import pytest

from policies import PolicyEngine


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    """The baseline policy alone, shared by a module's tests (decisions are pure)."""
    return PolicyEngine()
