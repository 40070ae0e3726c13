"""Serve the web application from the package: ``/app/`` (its files), ``/`` (a redirect).

The application is plain JavaScript modules, HTML and CSS under ``static/`` with
no build step, so the Python install alone serves it and nothing is loaded from
another host; ``static/vendor`` holds the one vendored file (axe-core, used only
by the browser tests) with its licence. ``/app/config.json`` tells the page what
the hub's settings say about the map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.settings import HubSettings
from schema.codes import RISK_CATEGORIES

__all__ = ["APP_PATH", "STATIC", "mount_web"]

STATIC = Path(__file__).parent / "static"
APP_PATH = "/app"


def _content_policy(settings: HubSettings) -> str:
    """Everything from the hub itself; base map tiles from the tile host, if one is set."""
    images = "'self' data:"
    if settings.map_tile_url:
        parts = urlsplit(settings.map_tile_url.replace("{", "").replace("}", ""))
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; font-src 'self';"
        f" img-src {images}; connect-src 'self' ws: wss:; frame-ancestors 'none';"
        " base-uri 'none'; form-action 'self'"
    )


def _security_headers(policy: str) -> list[tuple[str, str]]:
    return [
        ("content-security-policy", policy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-cache"),
    ]


class _AppHeaders:
    """Security headers on every answer under ``/app/``; pages are revalidated each time."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in _security_headers(policy)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_web(app: FastAPI, settings: HubSettings) -> None:
    """``/app/`` serves the application, ``/app/config.json`` its settings, ``/app/callback``
    the page again (the sign-in's redirect URI), and ``/`` redirects to ``/app/``."""

    policy = _content_policy(settings)
    page = _AppHeaders(StaticFiles(directory=STATIC, html=True), policy)

    async def config(request: Request) -> Response:
        return JSONResponse(
            {
                "hubName": settings.hub_name,
                "district": settings.district,
                "tileUrl": settings.map_tile_url,
                "tileAttribution": settings.map_tile_attribution,
                "graphql": "/graphql",
                # the public client people sign in with (authorization code + PKCE, S256)
                "webClientId": settings.web_client_id,
                "redirectUris": settings.web_redirects(),
                "riskCategories": [
                    {"code": c.code, "zh": c.name_zh, "en": c.name_en}
                    for c in RISK_CATEGORIES.values()
                ],
            },
            headers={"cache-control": "no-cache"},
        )

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{APP_PATH}/", status_code=307)

    async def callback(request: Request) -> Response:
        # The redirect URI: the application itself, which finishes the sign-in there.
        return FileResponse(STATIC / "index.html", headers=dict(_security_headers(policy)))

    app.add_route(f"{APP_PATH}/config.json", config, methods=["GET"], include_in_schema=False)
    app.add_route(f"{APP_PATH}/callback", callback, methods=["GET"], include_in_schema=False)
    app.add_route("/", home, methods=["GET"], include_in_schema=False)
    app.mount(APP_PATH, page, name="web")
