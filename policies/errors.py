"""Errors of the sharing-policy engine.

    LinliError                      (schema.errors)
    ├── PolicyError                 POLICY_INVALID
    └── PolicyEvaluationError       POLICY_EVALUATION_FAILED

A ``PolicyError`` is raised when policies are loaded, never on a read: a
node whose policy does not load refuses to start rather than share by guess.
"""

from __future__ import annotations

from schema.errors import LinliError

__all__ = ["PolicyError", "PolicyEvaluationError"]


class PolicyError(LinliError):
    """A policy or schema file that does not parse or does not validate against the schema."""

    code = "POLICY_INVALID"

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}", file=file, reason=reason)
        self.file = file
        self.reason = reason


class PolicyEvaluationError(LinliError):
    """Cedar could not evaluate a request the engine built (a bug, never the caller's fault)."""

    code = "POLICY_EVALUATION_FAILED"
