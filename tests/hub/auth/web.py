"""The web app's side of signing in, over HTTP: what the people tests and journeys share."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws

from hub.auth import people
from schema.enums import OrgKind
from schema.runtime.db import Database

DISTRICT = "110105"
WEB = "linli-web"
PASSWORD = "correct horse battery"
DEPARTMENT = "110105400000"


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str
    claims: dict[str, Any]


def from_address(address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (127.0.0.0/8 is all loopback)."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30.0
    )


async def add_person(
    db: Database,
    username: str,
    *,
    roles: str = "duty-officer",
    org: str = DEPARTMENT,
    org_kind: OrgKind = OrgKind.DEPARTMENT,
) -> str:
    async with db.transaction() as session:
        await people.create_person(
            session,
            username=username,
            display_name=f"测试 {username}",
            org=org,
            org_kind=org_kind,
            district=DISTRICT,
            roles=roles,
            password=PASSWORD,
        )
    return username


def callback(url: str) -> str:
    return f"{url}/app/callback"


def request_params(url: str, **overrides: str | None) -> tuple[dict[str, str], str]:
    """An authorization request's parameters, and the verifier of its challenge."""
    verifier = secrets.token_urlsafe(48)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": WEB,
        "redirect_uri": callback(url),
        "state": secrets.token_urlsafe(8),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}, verifier


async def sign_in(
    http: httpx.AsyncClient, url: str, params: dict[str, str], username: str, password: str
) -> httpx.Response:
    return await http.post(
        f"{url}/oauth/authorize",
        data={**params, "username": username, "password": password},
    )


async def code_for(
    http: httpx.AsyncClient, url: str, username: str
) -> tuple[str, str, dict[str, str]]:
    """Sign in; the code, the verifier and the request's parameters."""
    params, verifier = request_params(url)
    page = await http.get(f"{url}/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    answer = await sign_in(http, url, params, username, PASSWORD)
    assert answer.status_code == 303, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback(url)
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    return query["code"][0], verifier, params


async def exchange(
    http: httpx.AsyncClient, url: str, code: str, verifier: str | None
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback(url),
        "client_id": WEB,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return await http.post(f"{url}/oauth/token", data=form)


async def refresh(http: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": WEB}
    return await http.post(f"{url}/oauth/token", data=form)


def tokens_of(response: httpx.Response) -> Tokens:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    return Tokens(body["access_token"], body["refresh_token"], claims_of(body["access_token"]))


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the hub's own check is what ``accepted`` uses)."""
    claims: dict[str, Any] = json.loads(jws.extract_compact(token.encode("ascii")).payload or b"")
    return claims


async def signed_in(http: httpx.AsyncClient, url: str, username: str) -> Tokens:
    code, verifier, _ = await code_for(http, url, username)
    return tokens_of(await exchange(http, url, code, verifier))
