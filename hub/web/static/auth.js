// The one place the page gets its access token.
//
// People sign in at the hub's own authorization server with the authorization code
// grant and PKCE (RFC 7636, S256 only) as the public client named in config.json;
// the page refreshes its token before it expires (each refresh token works once) and
// signs out by revoking the refresh token. Machine callers (and the browser tests of
// client roles) may instead hand the page a token in the URL fragment (#token=...),
// which the browser never sends to a server. Everything is kept in sessionStorage:
// one tab, one session.
const STORE = sessionStorage;
const KEYS = {
  access: "linli.token", refresh: "linli.refresh", expires: "linli.expires",
  verifier: "linli.pkce.verifier", state: "linli.pkce.state", back: "linli.pkce.back",
};
const REFRESH_BEFORE_S = 30;

let config = null;
let refreshTimer = null;
let failure = null;

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function redirectUri() {
  const uris = config.redirectUris ?? [];
  return uris.find((uri) => new URL(uri).origin === location.origin) ?? uris[0];
}

function keep(answer) {
  STORE.setItem(KEYS.access, answer.access_token);
  if (answer.refresh_token) STORE.setItem(KEYS.refresh, answer.refresh_token);
  const expires = Date.now() + (answer.expires_in ?? 300) * 1000;
  STORE.setItem(KEYS.expires, String(expires));
  schedule();
}

function schedule() {
  clearTimeout(refreshTimer);
  const expires = Number(STORE.getItem(KEYS.expires));
  if (!expires || !STORE.getItem(KEYS.refresh)) return;
  const lifetime = Math.max(5000, expires - Date.now() - REFRESH_BEFORE_S * 1000);
  refreshTimer = setTimeout(() => renew(), lifetime);
}

async function tokenRequest(form) {
  const response = await fetch("/oauth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.webClientId, ...form }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error_description ?? body.error ?? `HTTP ${response.status}`);
  return body;
}

/** The page starts: finish a sign-in, take a fragment token, or use the stored session. */
export async function start(settings) {
  config = settings;
  const params = new URLSearchParams(location.search);
  if (location.pathname.endsWith("/callback")) {
    const back = STORE.getItem(KEYS.back) || "./";
    const expected = STORE.getItem(KEYS.state);
    const verifier = STORE.getItem(KEYS.verifier);
    STORE.removeItem(KEYS.state);
    STORE.removeItem(KEYS.verifier);
    history.replaceState(null, "", back);
    if (params.get("error")) {
      failure = params.get("error_description") || params.get("error");
    } else if (!expected || params.get("state") !== expected || !verifier) {
      failure = "state mismatch";
    } else {
      try {
        keep(await tokenRequest({
          grant_type: "authorization_code", code: params.get("code"),
          redirect_uri: redirectUri(), code_verifier: verifier,
        }));
      } catch (error) {
        failure = error.message;
      }
    }
    return token();
  }
  const fragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fragment) {
    STORE.setItem(KEYS.access, fragment);
    STORE.removeItem(KEYS.refresh);
    history.replaceState(null, "", location.pathname + location.search);
  }
  schedule();
  return token();
}

/** Why the last sign-in failed, if it did. */
export function lastFailure() {
  return failure;
}

/** Go to the hub's sign-in page; the page comes back here, at the same URL. */
export async function signIn() {
  const verifier = randomString(48);
  const state = randomString(24);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  STORE.setItem(KEYS.verifier, verifier);
  STORE.setItem(KEYS.state, state);
  STORE.setItem(KEYS.back, location.pathname.replace(/callback$/, "") + location.search);
  const query = new URLSearchParams({
    response_type: "code", client_id: config.webClientId, redirect_uri: redirectUri(),
    state, code_challenge: challenge, code_challenge_method: "S256",
  });
  if (document.documentElement.lang === "en") query.set("ui_locales", "en");
  location.assign(`/oauth/authorize?${query}`);
}

/** The current access token, or null. */
export function token() {
  return STORE.getItem(KEYS.access);
}

/** The token's claims (for what the page offers; the API checks the token itself). */
export function claims() {
  const current = token();
  if (!current) return null;
  try {
    const part = current.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    const parsed = JSON.parse(json);
    return { ...parsed, scopes: new Set((parsed.scope ?? "").split(" ").filter(Boolean)) };
  } catch {
    return null;
  }
}

let renewing = null;

/** A fresh access token (refresh rotation); null when a person must sign in again. */
export function renew() {
  renewing ??= (async () => {
    const refresh = STORE.getItem(KEYS.refresh);
    if (!refresh) return null;
    try {
      keep(await tokenRequest({ grant_type: "refresh_token", refresh_token: refresh }));
      document.dispatchEvent(new CustomEvent("linli:renewed"));
      return token();
    } catch {
      forget();
      return null;
    }
  })().finally(() => (renewing = null));
  return renewing;
}

function forget() {
  clearTimeout(refreshTimer);
  for (const key of [KEYS.access, KEYS.refresh, KEYS.expires]) STORE.removeItem(key);
}

/** Sign out: the hub revokes the session (every token of it), the page forgets it. */
export async function signOut() {
  const refresh = STORE.getItem(KEYS.refresh);
  const current = refresh ?? token();
  forget();
  if (current && config) {
    await fetch("/oauth/revoke", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: current, client_id: config.webClientId }),
    }).catch(() => null);
  }
}
