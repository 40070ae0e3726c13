"""The hub's GraphQL schema: every part's root fields in one Query, Mutation and Subscription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from hub.federation.resolvers import SourcesExtension, mutation_fields, query_fields
from hub.governance import audit, emergency
from hub.settings import HubSettings
from policies.caller import Caller
from schema.enums import OrgKind
from schema.errors import LinliError
from schema.runtime.graphql import LinliGraphQLRouter, build_schema, root_type

if TYPE_CHECKING:
    from hub.flags.component import HubFlags

__all__ = ["ANONYMOUS", "HubGraphQLRouter", "hub_schema"]

ANONYMOUS = Caller(org="", org_kind=OrgKind.PUBLIC, scopes=frozenset(), client_id="", subject="")
"""The caller of a WebSocket connection until its ``connection_init`` authenticates it."""


def hub_schema(settings: HubSettings, flags: HubFlags) -> strawberry.Schema:
    """The schema with the settings' limits and hardening."""
    return build_schema(
        query=root_type(
            "Query", {**query_fields(), **flags.query_fields(), **audit.query_fields()}
        ),
        mutation=root_type(
            "Mutation",
            {**mutation_fields(), **flags.mutation_fields(), **emergency.mutation_fields()},
        ),
        subscription=root_type("Subscription", flags.subscription_fields()),
        settings=settings,
        extensions=[SourcesExtension],
    )


class HubGraphQLRouter(LinliGraphQLRouter):
    """``/graphql``; a WebSocket (graphql-transport-ws) authenticates at ``connection_init``.

    The payload carries ``{"Authorization": "Bearer <token>"}``; a missing or bad
    token, or one without any of ``ws_scopes``, closes the socket with 4403.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        context_getter: Callable[..., Any],
        settings: HubSettings,
        *,
        authenticate: Callable[[str | None], Awaitable[Caller]],
        ws_scopes: frozenset[str],
    ) -> None:
        super().__init__(
            schema,
            context_getter=context_getter,
            graphql_ide=None if settings.production else "graphiql",
            allow_queries_via_get=not settings.production,
        )
        self.authenticate = authenticate
        self.ws_scopes = ws_scopes

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        authorization = params.get("Authorization") or params.get("authorization")
        try:
            caller = await self.authenticate(
                authorization if isinstance(authorization, str) else None
            )
        except LinliError as exc:
            raise ConnectionRejectionError({"code": exc.extensions["code"]}) from exc
        if not self.ws_scopes & caller.scopes:
            raise ConnectionRejectionError({"code": "FORBIDDEN"})
        context.caller = caller
        unset: UnsetType = UNSET
        return unset
