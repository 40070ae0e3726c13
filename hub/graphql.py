"""The hub's GraphQL schema: every part's root fields in one Query, Mutation and Subscription."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from hub.aid.component import HubAid
from hub.federation.cost import CostBudget
from hub.federation.resolvers import SourcesExtension, mutation_fields, query_fields
from hub.governance import audit, emergency
from hub.settings import HubSettings
from hub.throttle import RATE_LIMITED, Throttle, per_second
from policies.caller import Caller
from policies.tokens import TokenError
from schema.enums import OrgKind
from schema.errors import LinliError
from schema.runtime.graphql import LinliGraphQLRouter, build_schema, root_type
from schema.runtime.tasks import BackgroundTasks

if TYPE_CHECKING:
    from hub.flags.component import HubFlags
    from hub.sitreps.component import HubSitreps

__all__ = ["ANONYMOUS", "TOKEN_ENDED_CLOSE_CODE", "HubGraphQLRouter", "hub_schema"]

#: The WebSocket close code when the connection's token expires, is revoked or its client
#: disabled; the close reason is the token error's reason (``TOKEN_EXPIRED`` ...).
TOKEN_ENDED_CLOSE_CODE = 4401
#: Seconds between checks of an open connection's token (changes wake it at once).
_TOKEN_CHECK_S = 1.0

ANONYMOUS = Caller(org="", org_kind=OrgKind.PUBLIC, scopes=frozenset(), client_id="", subject="")
"""The caller of a WebSocket connection until its ``connection_init`` authenticates it."""


def hub_schema(
    settings: HubSettings, flags: HubFlags, sitreps: HubSitreps, aid: HubAid
) -> strawberry.Schema:
    """The schema with the settings' limits and hardening."""
    return build_schema(
        query=root_type(
            "Query",
            {
                **query_fields(),
                **flags.query_fields(),
                **audit.query_fields(),
                **sitreps.query_fields(),
                **aid.query_fields(),
            },
        ),
        mutation=root_type(
            "Mutation",
            {
                **mutation_fields(),
                **flags.mutation_fields(),
                **emergency.mutation_fields(),
                **sitreps.mutation_fields(),
            },
        ),
        subscription=root_type(
            "Subscription", {**flags.subscription_fields(), **aid.subscription_fields()}
        ),
        settings=settings,
        extensions=[SourcesExtension, CostBudget.limited_to(settings.max_query_cost)],
    )


class HubGraphQLRouter(LinliGraphQLRouter):
    """``/graphql``; a WebSocket (graphql-transport-ws) authenticates at ``connection_init``.

    The payload carries ``{"Authorization": "Bearer <token>"}``; a missing or bad
    token, or one without any of ``ws_scopes``, closes the socket with 4403. Once
    open, the connection is closed with ``TOKEN_ENDED_CLOSE_CODE`` (4401) when its
    token expires, is revoked or its client is disabled: ``still_valid`` is checked
    every second and whenever ``changed()`` is set.

    Each client (by client id; without a token, by remote address) may make
    ``graphql_rate_per_client`` HTTP requests a second; more are answered 429 with
    ``Retry-After`` and the code ``RATE_LIMITED``, before anything is executed.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        context_getter: Callable[..., Any],
        settings: HubSettings,
        *,
        authenticate: Callable[[str | None], Awaitable[Caller]],
        ws_scopes: frozenset[str],
        still_valid: Callable[[Caller], None],
        changed: Callable[[], asyncio.Event],
    ) -> None:
        super().__init__(
            schema,
            context_getter=context_getter,
            allow_queries_via_get=not settings.production,
        )
        self.authenticate = authenticate
        self.ws_scopes = ws_scopes
        self.still_valid = still_valid
        self.changed = changed
        self.throttle = Throttle.of(per_second(settings.graphql_rate_per_client), "graphql")

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Serve the request; a WebSocket is watched for its token's end while it is open."""
        if not isinstance(request, WebSocket):
            if (refused := self._over_rate(request, context)) is not None:
                return refused
            return await super().run(request, context, root_value)
        async with BackgroundTasks("graphql-ws token watch") as tasks:
            tasks.start(self._close_when_token_ends(request, context))
            return await super().run(request, context, root_value)

    def _over_rate(self, request: Request, context: Any) -> JSONResponse | None:
        caller = getattr(context, "caller", ANONYMOUS)
        if caller.client_id:
            key = f"client:{caller.client_id}"
        else:
            key = f"address:{request.client.host if request.client else ''}"
        if self.throttle.hit(key):
            return None
        retry_after = self.throttle.retry_after(key)
        message = (
            f"more than {self.throttle.limit.amount} GraphQL requests a second;"
            f" retry after {retry_after} s"
        )
        return JSONResponse(
            {"data": None, "errors": [{"message": message, "extensions": {"code": RATE_LIMITED}}]},
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )

    async def _close_when_token_ends(self, websocket: WebSocket, context: Any) -> None:
        while True:
            changed = self.changed()  # taken before the check, so no change is missed
            caller = getattr(context, "caller", ANONYMOUS)
            wait_s = _TOKEN_CHECK_S
            if caller is not ANONYMOUS:
                try:
                    self.still_valid(caller)
                except TokenError as refused:
                    with contextlib.suppress(RuntimeError):  # the client left first
                        await websocket.close(
                            code=TOKEN_ENDED_CLOSE_CODE, reason=refused.extensions["reason"]
                        )
                    return
                if caller.expires_at is not None:
                    wait_s = max(0.0, min(wait_s, caller.expires_at - time.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await changed.wait()

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
