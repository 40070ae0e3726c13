"""GraphiQL for people, outside production: a page anyone may open, the API still needs a token.

The page is ``GET /graphql`` asked for as HTML (a browser); its scripts and styles
are a vendored GraphiQL build served from ``/graphiql/`` (``static/graphiql``, with
their licences), so it works offline and loads nothing from another host. The
page reads an access token from the URL fragment (``/graphql#token=...``) into
GraphiQL's headers editor; every query it sends carries it, and the API refuses
queries without one as before.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ASSETS", "ASSETS_PATH", "PAGE", "GraphiQLPage", "mount_graphiql"]

_STATIC = Path(__file__).parent / "static"
PAGE = _STATIC / "graphiql.html"
"""The page: relative links to the assets, so it works behind a path prefix too."""
ASSETS = _STATIC / "graphiql"
"""GraphiQL's, React's and ReactDOM's production builds and their licences."""
ASSETS_PATH = "/graphiql"
"""Where the assets are served; the page at ``/graphql`` links to ``graphiql/...``."""


class GraphiQLPage:
    """Answer a browser's ``GET /graphql`` (HTML accepted, no ``query``) with the page.

    It sits in front of the GraphQL router, whose context needs a token; every other
    request (GET queries, POST, WebSocket) passes through untouched.
    """

    def __init__(self, app: ASGIApp, *, path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self.page = PAGE.read_bytes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._wants_page(scope):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(self.page)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.page})

    def _wants_page(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != self.path:
            return False
        query = scope.get("query_string", b"")
        if any(part.split(b"=", 1)[0] == b"query" for part in query.split(b"&")):
            return False
        accept = dict(scope.get("headers", [])).get(b"accept", b"")
        return b"text/html" in accept


def mount_graphiql(app: FastAPI) -> None:
    """Serve the page at ``/graphql`` and its assets at ``/graphiql/`` (development only)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="graphiql")
    app.add_middleware(GraphiQLPage)
