"""The scope vocabulary on the wire: tokens and clients of other systems depend on these strings."""

from __future__ import annotations

from schema.scopes import Scope


def test_a_scope_is_its_wire_string() -> None:
    # Scopes are compared with the strings of a token's ``scope`` claim.
    assert Scope.RISK_VERIFY == "risk:verify"
    assert "risk:verify" in frozenset({Scope.RISK_VERIFY})
    assert " ".join([Scope.RISK_FLAG, Scope.ADMIN]) == "risk:flag admin"
