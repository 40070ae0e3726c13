"""Risk flags at the hub: inbox from nodes, routing, workflow, events, webhooks, outbox to nodes.

Contract with community nodes
=============================

Node → hub: ``POST /flags/inbox``
---------------------------------

``Authorization: Bearer <token from /oauth/token, the community's client, scope risk:flag>``::

    {"message_id": "<uuid>",
     "kind": "flag.raised",
     "flag": <schema.records.RiskFlagPublic .model_dump(mode="json"), snake_case:
              id ("RiskFlag:<node org>:<local>"), owner, version, created_at, updated_at,
              category, description, location, address, estimated_severity,
              evidence_links, status, transitions, assigned_to>,
     "raised_at": "<ISO 8601 with zone: when staff raised it>",
     "sent_at": "<ISO 8601 with zone: this attempt>"}

Answers (errors are ``{"errors": [{"message", "extensions": {"code", "field", ...}}]}``):

- 200 ``{"status": "accepted", "flag_id": ...}``: stored and routed (first delivery);
- 200 ``{"status": "duplicate", "flag_id": ...}``: this ``message_id`` or this flag id
  was received before; nothing changed (retry freely, store-and-forward);
- 400 bad input: ``MISSING_FIELD``, ``UNKNOWN_RISK_CATEGORY``, ``INVALID_GEOMETRY``,
  ``STRING_TOO_LONG``, ``INVALID_ID`` (id not ``RiskFlag:<owner>:...``), ``INVALID_JSON``, ...
  with ``field`` (``flag.category``, ``flag.location.coordinates``, ``raised_at``, ...);
  the flag's content is checked against ``schema.records.RiskFlagCreate``;
- 401 ``UNAUTHENTICATED`` (no or bad token);
- 403 ``FORBIDDEN``: no scope ``risk:flag``, or the token's ``org`` is not the flag's ``owner``.

The hub keeps its own workflow: the node's ``status``/``transitions``/``assigned_to``
are not taken over.

Hub → node: ``POST <node url>/flags/updates``
---------------------------------------------

After every change of a flag (routed, each status change, each escalation), in
order per node, at least once (retried with exponential backoff and jitter until
a 2xx answer; the node drops repeats by ``message_id``). The node's URL is its
registration in the federation registry. ``Authorization: Bearer <token>`` minted
by the hub for ``aud`` = the node's source id, ``org`` = the district,
``org_kind`` = ``hub``, ``scope`` = ``risk:verify``, ``sub``/``client_id`` = the
hub's id, ``act.sub`` = the hub's id::

    {"message_id": "<uuid>",
     "flag_id": "RiskFlag:<node org>:<local>",
     "status": "routed|acknowledged|verifying|confirmed|dismissed|resolved",
     "transitions": [{"status", "at", "by", "note"}, ...],   # schema FlagTransition, all so far
     "assigned_to": "<department code>",
     "timeline": {"raised_at_node": iso, "received_at_hub": iso, "routed": iso, ...}}

Workflow, routing, events, webhooks
===================================

``routed → acknowledged → verifying → confirmed | dismissed → resolved``, moved
only by the assigned department (``org_kind`` department, scope ``risk:verify``)
through ``transitionFlag``; see ``service``. Routing rules: ``routing``. Event
log and ``flagEvents`` subscription: ``events``. Webhooks: ``webhooks``.
"""

from hub.flags.component import HubFlags, create_flags
from hub.flags.errors import EventsExpired, InvalidSequence, InvalidTransition, RoutingConfigError
from hub.flags.routing import Route, RoutingRules, load_routing

__all__ = [
    "EventsExpired",
    "HubFlags",
    "InvalidSequence",
    "InvalidTransition",
    "Route",
    "RoutingConfigError",
    "RoutingRules",
    "create_flags",
    "load_routing",
]
