// The one place the page gets its access token: sign-in replaces only this module.
// Until people sign in at the hub, the token comes in the URL fragment
// (/app/#token=...), which the browser never sends to the server, and is kept for
// this tab in sessionStorage.
const KEY = "linli.token";

/** Take a token from the URL fragment, if one is there, and clear the fragment. */
export async function start() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return token ?? sessionStorage.getItem(KEY);
}

/** The current access token, or null. */
export function token() {
  return sessionStorage.getItem(KEY);
}

/** The token's claims (for what the page shows; the API checks the token itself). */
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

/** A fresh token after the API said the current one ended; null when a person must act. */
export async function renew() {
  return null;
}

/** Forget the token. */
export async function signOut() {
  sessionStorage.removeItem(KEY);
}
