"""People sign in at a real hub: the sign-in page, authorization code with PKCE, refresh
rotation, sign-out, and every refusal (over HTTP, as the web app and a browser would)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from hub.auth import people, service
from hub.auth.tables import AuthorizationCode
from policies.tokens import TokenRevoked
from schema.storage import utcnow
from tests.hub.auth.conftest import RunningHub, refused_within
from tests.hub.auth.web import (
    DEPARTMENT,
    PASSWORD,
    WEB,
    add_person,
    callback,
    claims_of,
    code_for,
    exchange,
    from_address,
    refresh,
    request_params,
    sign_in,
    signed_in,
    tokens_of,
)

BOUND_S = 5.0  # revocation reaches another replica within 2 x 0.2 s; generous under load


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with from_address("127.0.0.1") as http:
        yield http


async def accepted(hub: RunningHub, token: str) -> str | None:
    """The person the hub's token check sees (another replica than the server)."""
    caller = await hub.auth.authenticator.authenticate(f"Bearer {token}")
    return caller.person


async def codes_of(hub: RunningHub, username: str) -> int:
    async with hub.db.sessions() as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(AuthorizationCode)
            .where(sa.column("username") == username)
        )
    return int(count or 0)


async def test_metadata_lists_the_authorization_endpoint_and_s256_only(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    metadata = (await browser.get(f"{hub.url}/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_endpoint"] == f"{hub.settings.issuer}/oauth/authorize"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


async def test_the_sign_in_page_is_chinese_by_default_labelled_and_self_contained(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    params, _ = request_params(hub.url)
    page = await browser.get(f"{hub.url}/oauth/authorize", params=params)
    assert page.status_code == 200
    html = page.text
    assert '<html lang="zh-CN">' in html
    assert '<label for="username">用户名</label>' in html
    assert '<label for="password">密码</label>' in html
    assert 'id="password" name="password" type="password"' in html
    assert "<script" not in html
    assert "src=" not in html
    assert "<link" not in html
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    english = await browser.get(f"{hub.url}/oauth/authorize", params={**params, "ui_locales": "en"})
    assert '<html lang="en">' in english.text
    assert '<label for="username">Username</label>' in english.text


async def test_a_person_signs_in_and_the_token_names_them_and_the_client(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    username = await add_person(hub.db, "wang.fang")
    tokens = await signed_in(browser, hub.url, username)
    assert tokens.claims["sub"] == username
    assert tokens.claims["name"] == "测试 wang.fang"
    assert tokens.claims["client_id"] == WEB
    assert tokens.claims["org"] == DEPARTMENT
    assert tokens.claims["org_kind"] == "department"
    assert set(str(tokens.claims["scope"]).split()) == {
        "incidents:read",
        "resources:read",
        "shelters:read",
        "alerts:read",
        "risk:read",
        "risk:verify",
        "emergency:declare",
    }
    assert tokens.claims["exp"] - tokens.claims["iat"] == hub.settings.access_token_ttl_s
    assert await accepted(hub, tokens.access) == username


async def test_a_wrong_password_is_refused_and_no_code_is_issued(hub: RunningHub) -> None:
    username = await add_person(hub.db, "li.wei")
    params, _ = request_params(hub.url)
    async with from_address("127.0.3.1") as http:
        answer = await sign_in(http, hub.url, params, username, "not the password")
        unknown = await sign_in(http, hub.url, params, "no.such.person", PASSWORD)
    assert answer.status_code == 401
    assert answer.headers["x-linli-code"] == "SIGNIN_FAILED"
    assert "用户名或密码错误" in answer.text
    assert 'role="alert"' in answer.text
    assert "location" not in answer.headers
    # An unknown username answers exactly the same.
    assert unknown.status_code == 401
    assert unknown.headers["x-linli-code"] == "SIGNIN_FAILED"
    assert await codes_of(hub, username) == 0


async def test_repeated_wrong_passwords_are_throttled_even_the_right_one_then(
    hub: RunningHub,
) -> None:
    username = await add_person(hub.db, "zhao.lei")
    bystander = await add_person(hub.db, "zhao.min")
    limit = hub.settings.signin_failures_per_person
    params, _ = request_params(hub.url)
    async with from_address("127.0.4.1") as http:
        statuses = [
            (await sign_in(http, hub.url, params, username, f"guess-{i}")).status_code
            for i in range(limit + 1)
        ]
        throttled = await sign_in(http, hub.url, params, username, PASSWORD)
        other = await sign_in(http, hub.url, params, bystander, PASSWORD)
    assert statuses == [401] * limit + [429]
    assert throttled.status_code == 429
    assert throttled.headers["x-linli-code"] == "RATE_LIMITED"
    assert int(throttled.headers["retry-after"]) >= 1
    assert "失败次数过多" in throttled.text
    assert await codes_of(hub, username) == 0
    # Another person signs in from the same address: the limit is per username.
    assert other.status_code == 303


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": None}, "must be S256"),
        ({"code_challenge_method": "plain"}, "must be S256"),
    ],
    ids=["without-pkce", "method-missing", "plain"],
)
async def test_authorization_requests_without_s256_pkce_go_back_with_invalid_request(
    hub: RunningHub, browser: httpx.AsyncClient, overrides: dict[str, str | None], description: str
) -> None:
    params, _ = request_params(hub.url, **overrides)
    for answer in (
        await browser.get(f"{hub.url}/oauth/authorize", params=params),
        await sign_in(browser, hub.url, params, "wang.fang", PASSWORD),
    ):
        assert answer.status_code == 302, answer.text
        location = urlsplit(answer.headers["location"])
        assert location.path == "/app/callback"
        query = parse_qs(location.query)
        assert query["error"] == ["invalid_request"]
        assert description in query["error_description"][0]
        assert query["state"] == [params["state"]]
        assert "code" not in query


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example/app/callback"},
        {"redirect_uri": "CALLBACK/"},  # a prefix match is not a match
        {"redirect_uri": None},
        {"client_id": "someone-else"},
    ],
    ids=["other-host", "trailing-slash", "missing", "unknown-client"],
)
async def test_unregistered_redirect_uris_and_clients_get_a_page_never_a_redirect(
    hub: RunningHub, browser: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    if overrides.get("redirect_uri") == "CALLBACK/":
        overrides = {"redirect_uri": callback(hub.url) + "/"}
    params, _ = request_params(hub.url, **overrides)
    for answer in (
        await browser.get(f"{hub.url}/oauth/authorize", params=params),
        await sign_in(browser, hub.url, params, "wang.fang", PASSWORD),
    ):
        assert answer.status_code == 400
        assert "location" not in answer.headers
        assert "无法登录" in answer.text
        assert answer.headers["x-linli-code"] in {"invalid_request", "invalid_client"}


async def test_a_wrong_or_missing_verifier_gets_no_token(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    code, _verifier, _ = await code_for(browser, hub.url, "wang.fang")
    wrong = await exchange(browser, hub.url, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    missing = await exchange(browser, hub.url, code, None)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert "access_token" not in wrong.json() | missing.json()


async def test_a_replayed_code_is_refused_and_revokes_what_it_issued(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    code, verifier, _ = await code_for(browser, hub.url, "wang.fang")
    first = tokens_of(await exchange(browser, hub.url, code, verifier))
    assert await accepted(hub, first.access) == "wang.fang"
    replay = await exchange(browser, hub.url, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    refused = await refused_within(hub.auth, first.access, BOUND_S)
    assert isinstance(refused, TokenRevoked)
    after = await refresh(browser, hub.url, first.refresh)
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    first = await signed_in(browser, hub.url, "wang.fang")
    second = tokens_of(await refresh(browser, hub.url, first.refresh))
    assert second.refresh != first.refresh
    assert second.access != first.access
    assert second.claims["sub"] == "wang.fang"
    assert second.claims["sid"] == first.claims["sid"]
    third = tokens_of(await refresh(browser, hub.url, second.refresh))
    assert await accepted(hub, third.access) == "wang.fang"
    # The first refresh token again: someone holds a copy. The whole session ends.
    reused = await refresh(browser, hub.url, first.refresh)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    for token in (second.access, third.access):
        assert isinstance(await refused_within(hub.auth, token, BOUND_S), TokenRevoked)
    latest = await refresh(browser, hub.url, third.refresh)
    assert latest.status_code == 400
    assert latest.json()["error"] == "invalid_grant"


async def test_sign_out_revokes_the_session_at_the_hub_and_in_the_published_list(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    tokens = await signed_in(browser, hub.url, "wang.fang")
    other = await signed_in(browser, hub.url, "wang.fang")  # another device stays signed in
    answer = await browser.post(
        f"{hub.url}/oauth/revoke", data={"token": tokens.refresh, "client_id": WEB}
    )
    assert answer.status_code == 200
    assert isinstance(await refused_within(hub.auth, tokens.access, BOUND_S), TokenRevoked)
    # What sources poll names the token's jti.
    listed = await browser.get(f"{hub.url}/oauth/revocations")
    revoked = claims_of(listed.text)["revoked"]
    assert tokens.claims["jti"] in {entry["jti"] for entry in revoked}
    again = await refresh(browser, hub.url, tokens.refresh)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert await accepted(hub, other.access) == "wang.fang"
    # Signing out with the access token works the same.
    answer = await browser.post(
        f"{hub.url}/oauth/revoke", data={"token": other.access, "client_id": WEB}
    )
    assert answer.status_code == 200
    assert isinstance(await refused_within(hub.auth, other.access, BOUND_S), TokenRevoked)


async def test_a_disabled_person_cannot_sign_in_and_their_sessions_end(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    username = await add_person(hub.db, "sun.li", roles="viewer")
    tokens = await signed_in(browser, hub.url, username)
    assert await accepted(hub, tokens.access) == username
    async with hub.db.transaction() as session:
        ended = await people.disable_person(session, username)
    assert [r.jti for r in ended] == [tokens.claims["jti"]]
    assert isinstance(await refused_within(hub.auth, tokens.access, BOUND_S), TokenRevoked)
    params, _ = request_params(hub.url)
    answer = await sign_in(browser, hub.url, params, username, PASSWORD)
    assert answer.status_code == 403
    assert answer.headers["x-linli-code"] == "ACCOUNT_DISABLED"
    assert "location" not in answer.headers
    again = await refresh(browser, hub.url, tokens.refresh)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_viewer_refreshes_by_itself_like_a_wall_screen(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    username = await add_person(hub.db, "wall-screen", roles="viewer")
    tokens = await signed_in(browser, hub.url, username)
    assert "risk:verify" not in str(tokens.claims["scope"]).split()
    for _ in range(5):  # the page refreshes before each expiry, with nobody at the screen
        tokens = tokens_of(await refresh(browser, hub.url, tokens.refresh))
        assert await accepted(hub, tokens.access) == username


async def test_an_expired_code_gets_no_token(hub: RunningHub, browser: httpx.AsyncClient) -> None:
    code, verifier, _ = await code_for(browser, hub.url, "wang.fang")
    async with hub.db.transaction() as session:
        await session.execute(
            sa.update(AuthorizationCode)
            .where(sa.column("code_hash") == people.token_hash(code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    answer = await exchange(browser, hub.url, code, verifier)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_the_stored_code_is_a_hash_with_its_s256_challenge(
    hub: RunningHub, browser: httpx.AsyncClient
) -> None:
    code, _verifier, params = await code_for(browser, hub.url, "wang.fang")
    async with hub.db.sessions() as session:
        assert await session.get(AuthorizationCode, code) is None
        stored = await session.get(AuthorizationCode, people.token_hash(code))
    assert stored is not None
    assert (stored.code_challenge, stored.code_challenge_method) == (
        params["code_challenge"],
        "S256",
    )
    assert stored.expires_at - utcnow() <= timedelta(seconds=hub.settings.authorization_code_ttl_s)


async def test_a_department_with_a_duty_officer_counts_as_staffed_for_its_flags(
    hub: RunningHub,
) -> None:
    await add_person(hub.db, "he.jun", org="110105400077", roles="duty-officer")
    await add_person(hub.db, "he.xin", org="110105400078", roles="viewer")
    async with hub.db.sessions() as session:
        staffed = await service.orgs_with_scope(session, "risk:verify")
    assert "110105400077" in staffed
    assert "110105400078" not in staffed
