"""Risk flags at the node: the outbox to the hub, its delivery, and updates from the hub.

Node → hub: every raised flag writes a ``flag_outbox`` row in the flag's own
transaction (``outbox``); ``delivery`` sends the rows to the hub's
``POST /flags/inbox`` in order, at least once. Hub → node: ``updates`` serves
``POST /flags/updates`` and applies the hub's workflow state to the node's
flag, once per message id. The contract is ``hub.flags``'s docstring.
"""

from node.flags.component import FlagOutbox, FlagOutboxEntry, NodeFlags, create_flags
from node.flags.delivery import FlagDelivery, HubTokens, OutboxMetrics
from node.flags.outbox import OutboxHooks, raised_message
from node.flags.tables import FlagTables, OutboxStatus, define_flag_tables
from node.flags.updates import FlagUpdate, apply_update, check_hub_caller

__all__ = [
    "FlagDelivery",
    "FlagOutbox",
    "FlagOutboxEntry",
    "FlagTables",
    "FlagUpdate",
    "HubTokens",
    "NodeFlags",
    "OutboxHooks",
    "OutboxMetrics",
    "OutboxStatus",
    "apply_update",
    "check_hub_caller",
    "create_flags",
    "define_flag_tables",
    "raised_message",
]
