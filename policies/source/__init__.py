"""What every source shares to speak the node protocol under its owner's policy."""

from policies.source.app import ContextFactory, create_source
from policies.source.context import AUDIT_SCOPE, PolicyTables, SourceContext, define_policy_tables

__all__ = [
    "AUDIT_SCOPE",
    "ContextFactory",
    "PolicyTables",
    "SourceContext",
    "create_source",
    "define_policy_tables",
]
