"""Who is calling the node. Until OAuth tokens land, only statically trusted callers."""

from __future__ import annotations

import hmac
import logging

from node.settings import NodeSettings
from policies.caller import Caller
from schema.errors import Unauthenticated

__all__ = ["StaticTokenAuthenticator"]

log = logging.getLogger("linli.node.auth")


class StaticTokenAuthenticator:
    """Accepts only the bearer tokens listed in ``trusted_callers``."""

    def __init__(self, settings: NodeSettings) -> None:
        self._callers = [
            (
                caller.token.encode(),
                Caller(
                    org=caller.org,
                    org_kind=caller.org_kind,
                    scopes=frozenset(caller.scopes),
                    client_id=caller.client_id,
                    subject=caller.client_id,
                    district=settings.district,
                ),
            )
            for caller in settings.trusted_callers
        ]
        log.warning(
            "node %s accepts ONLY %d statically trusted caller(s); OAuth token checks are not"
            " configured",
            settings.source_id,
            len(self._callers),
        )

    async def authenticate(self, authorization: str | None) -> Caller:
        """The trusted caller whose token is presented."""
        if not authorization:
            raise Unauthenticated("missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("expected 'Authorization: Bearer <token>'")
        presented = token.strip().encode()
        for known, caller in self._callers:
            if hmac.compare_digest(known, presented):
                return caller
        raise Unauthenticated("unknown bearer token")
