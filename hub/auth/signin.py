"""The sign-in page of the authorization endpoint: server-rendered HTML, Chinese by default.

No script, no style sheet, font or image from anywhere: one self-contained page
(``ui_locales=en`` switches it to English), with labelled fields, usable by
keyboard alone, readable on a phone and on a wall screen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from html import escape
from urllib.parse import urlencode

__all__ = ["Lang", "lang_of", "render_error", "render_signin"]


class Lang(enum.StrEnum):
    """The languages of the page (BCP 47 tags of ``ui_locales``)."""

    ZH = "zh-CN"
    EN = "en"


_TEXT: Mapping[Lang, Mapping[str, str]] = {
    Lang.ZH: {
        "title": "登录 · 邻里应急数据枢纽",
        "heading": "登录",
        "intro": "使用您的账号登录 {hub}。",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "switch": "English",
        "error_heading": "无法登录",
        "SIGNIN_FAILED": "用户名或密码错误。",
        "ACCOUNT_DISABLED": "该账号已停用，请联系管理员。",
        "RATE_LIMITED": "失败次数过多，请 {retry} 秒后再试。",
        "bad_request": "登录请求无效：{detail}",
    },
    Lang.EN: {
        "title": "Sign in · Linli emergency data hub",
        "heading": "Sign in",
        "intro": "Sign in to {hub} with your account.",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "switch": "中文",
        "error_heading": "Cannot sign in",
        "SIGNIN_FAILED": "Wrong username or password.",
        "ACCOUNT_DISABLED": "This account is disabled; ask an administrator.",
        "RATE_LIMITED": "Too many failed attempts; try again in {retry} s.",
        "bad_request": "The sign-in request is not valid: {detail}",
    },
}

_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
margin:0;background:#f3f5f7;color:#1b1f23;font-size:1.1rem}
main{max-width:26rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.6rem;margin-top:0}
label{display:block;margin:1rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.6rem;border:1px solid #57606a;
border-radius:.3rem}
input:focus,button:focus,a:focus{outline:3px solid #0550ae;outline-offset:2px}
button{margin-top:1.4rem;width:100%;font-size:1.15rem;padding:.7rem;border:0;border-radius:.3rem;
background:#0550ae;color:#fff;cursor:pointer}
.error{background:#ffebe9;border:1px solid #cf222e;color:#82071e;padding:.7rem;border-radius:.3rem}
.switch{display:block;margin-top:1.2rem;text-align:right;color:#0550ae}
"""


def lang_of(params: Mapping[str, str]) -> Lang:
    """The page's language from ``ui_locales`` (OpenID Connect): English if it comes first."""
    for tag in params.get("ui_locales", "").split():
        if tag.lower().startswith("en"):
            return Lang.EN
        if tag.lower().startswith("zh"):
            return Lang.ZH
    return Lang.ZH


def _page(lang: Lang, body: str) -> str:
    text = _TEXT[lang]
    return (
        f'<!doctype html>\n<html lang="{lang.value}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(text['title'])}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def render_signin(
    *,
    action: str,
    params: Mapping[str, str],
    hub_name: str,
    username: str = "",
    error: str | None = None,
    retry_after: int = 0,
) -> str:
    """The sign-in form; the authorization request's parameters travel as hidden fields."""
    lang = lang_of(params)
    text = _TEXT[lang]
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n'
        for name, value in params.items()
    )
    alert = ""
    if error is not None:
        message = text[error].format(retry=retry_after)
        alert = f'<p class="error" role="alert" id="signin-error">{escape(message)}</p>\n'
    described = ' aria-describedby="signin-error"' if error else ""
    other = Lang.EN if lang is Lang.ZH else Lang.ZH
    switch = f"{action}?{urlencode({**params, 'ui_locales': other.value})}"
    body = (
        f"<h1>{escape(text['heading'])}</h1>\n"
        f"<p>{escape(text['intro'].format(hub=hub_name))}</p>\n"
        f"{alert}"
        f'<form method="post" action="{escape(action)}">\n{hidden}'
        f'<label for="username">{escape(text["username"])}</label>\n'
        f'<input id="username" name="username" autocomplete="username" required'
        f' autocapitalize="none" spellcheck="false" value="{escape(username)}"{described}'
        f"{'' if username else ' autofocus'}>\n"
        f'<label for="password">{escape(text["password"])}</label>\n'
        f'<input id="password" name="password" type="password" autocomplete="current-password"'
        f" required{described}{' autofocus' if username else ''}>\n"
        f'<button type="submit">{escape(text["submit"])}</button>\n'
        "</form>\n"
        f'<a class="switch" href="{escape(switch)}" lang="{other.value}"'
        f' hreflang="{other.value}">{escape(text["switch"])}</a>\n'
    )
    return _page(lang, body)


def render_error(*, params: Mapping[str, str], detail: str) -> str:
    """A request that cannot go back to the client (unknown client or redirect URI)."""
    lang = lang_of(params)
    text = _TEXT[lang]
    body = (
        f"<h1>{escape(text['error_heading'])}</h1>\n"
        f'<p class="error" role="alert">{escape(text["bad_request"].format(detail=detail))}</p>\n'
    )
    return _page(lang, body)
