// The console's only way to the gateway: the same JSON API it documents, with the key from the
// tab's sessionStorage sent as `Authorization: Bearer`, never in a cookie or a URL.

const KEY = "gateway.console.key";
const ROLE = "gateway.console.role";
const WHO = "gateway.console.who";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  role: () => sessionStorage.getItem(ROLE),
  who: () => sessionStorage.getItem(WHO),
  save(key, role, who) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
    sessionStorage.setItem(WHO, who);
  },
  clear() {
    for (const name of [KEY, ROLE, WHO]) sessionStorage.removeItem(name);
  },
};

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
  const headers = { Authorization: `Bearer ${key ?? session.key() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
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
