// The console's only way to the gateway: the same JSON API it documents. Signed in with a key,
// the key (from the tab's sessionStorage) goes as `Authorization: Bearer`, never in a cookie or a
// URL. Signed in through the identity provider (auth.oidc), the browser's HttpOnly session cookie
// goes instead, and every change carries the session's CSRF token in X-CSRF-Token.

const KEY = "gateway.console.key";
const ROLE = "gateway.console.role";
const WHO = "gateway.console.who";

// Cookie sign-in: who is signed in, read from GET /ui/session at each page load (kept in memory).
let cookie = null; // {user, role, team, csrf_token}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  role: () => (cookie ? cookie.role : sessionStorage.getItem(ROLE)),
  who: () => (cookie ? cookie.user : sessionStorage.getItem(WHO)),
  team: () => (cookie ? cookie.team : null),
  viaCookie: () => cookie !== null,
  save(key, role, who) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
    sessionStorage.setItem(WHO, who);
  },
  useCookie(info) {
    cookie = info;
  },
  clear() {
    cookie = null;
    for (const name of [KEY, ROLE, WHO]) sessionStorage.removeItem(name);
  },
};

// What each role may change (the API enforces it; the console only hides the rest).
const CHANGES = {
  admin: ["keys", "teams", "budgets", "quotas"],
  team_admin: ["keys", "budgets"],
  viewer: [],
  user: [],
};

/** Whether the signed-in role may change `what` (keys, teams, quotas). */
export function can(what) {
  return (CHANGES[session.role()] || []).includes(what);
}

/** An error answer of the API, with OpenAI's error object when there is one. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.param = error.param || null;
  }
}

/** Call the API: `path` is relative to the gateway root ("admin/keys", "v1/ai/usage"). */
export async function api(path, { method = "GET", query, body, key } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = {};
  const withCookie = key === undefined && cookie !== null;
  if (withCookie) {
    if (method !== "GET") headers["X-CSRF-Token"] = cookie.csrf_token;
  } else {
    headers.Authorization = `Bearer ${key ?? session.key() ?? ""}`;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: withCookie ? "same-origin" : "omit",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Which console a key opens: "admin" (the admin key) or "user" (an API key); throws if none. */
export async function identify(key) {
  try {
    await api("admin/routes", { key });
    return { role: "admin", who: "admin" };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  const usage = await api("v1/ai/usage", { key });
  return { role: "user", who: usage.user };
}

/** GET a /ui route with the cookie: its JSON, or null when it answers an error. */
async function uiGet(path) {
  const response = await fetch(new URL(path, document.baseURI), {
    credentials: "same-origin", cache: "no-store",
  });
  return response.ok ? response.json() : null;
}

/** The console session of this browser's cookie ({user, role, team, csrf_token}) or null. */
export const cookieSession = () => uiGet("ui/session");

/** Whether the gateway offers sign-in with an identity provider. */
export async function offersSignIn() {
  const found = await uiGet("ui/signin").catch(() => null);
  return Boolean(found && found.oidc);
}

/** End the cookie's session on the server. */
export async function logout() {
  if (cookie === null) return;
  await fetch(new URL("ui/logout", document.baseURI), {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": cookie.csrf_token },
  });
}
