"""Fixtures of the hub's parts that tests of the hub as a whole use too."""

from tests.hub.flags.conftest import receivers, start_flags_hub

__all__ = ["receivers", "start_flags_hub"]
