// The console's shell: sign-in (the key kept in this tab's sessionStorage, or the identity
// provider's session cookie), the navigation for each role, and a hash router that renders one
// view at a time. A role sees only the views it may read; the views hide what it may not change.

import { ApiError, cookieSession, identify, logout, offersSignIn, session } from "./api.js";
import { fill, h, notice } from "./dom.js";
import * as overview from "./view-overview.js";
import * as usage from "./view-usage.js";
import * as keys from "./view-keys.js";
import * as teams from "./view-teams.js";
import * as users from "./view-users.js";
import * as routes from "./view-routes.js";
import * as mcp from "./view-mcp.js";
import * as requests from "./view-requests.js";
import * as mine from "./view-mine.js";
import * as sessions from "./view-sessions.js";
import * as audit from "./view-audit.js";

const VIEWS = {
  admin: [
    ["overview", "Overview", overview.render],
    ["usage", "Usage", usage.render],
    ["keys", "Keys", keys.render],
    ["teams", "Teams & budgets", teams.render],
    ["users", "Users", users.render],
    ["routes", "Routes", routes.render],
    ["mcp", "MCP", mcp.render],
    ["requests", "Request log", requests.renderAdmin],
    ["audit", "Audit log", audit.render],
  ],
  team_admin: [
    ["keys", "Keys", keys.render],
    ["teams", "Team & budget", teams.render],
    ["usage", "Usage", usage.render],
    ["requests", "Request log", requests.renderAdmin],
    ["audit", "Audit log", audit.render],
  ],
  user: [
    ["me", "My usage", mine.renderUsage],
    ["my-keys", "My keys", mine.renderKeys],
    ["sessions", "Sessions", sessions.render],
    ["my-requests", "My requests", requests.renderOwn],
  ],
};

VIEWS.viewer = VIEWS.admin; // read-only: the views hide every change

const root = document.getElementById("app");
let cleanup = null;
let rendering = 0; // the latest render; an older one that finishes late is dropped

function signInForm(message) {
  const input = h("input", {
    type: "password", name: "key", autocomplete: "off", required: true,
    placeholder: "admin key or sk-gw-…", "aria-label": "API key",
  });
  const status = h("div", { class: "signin-status" }, message ? notice(message, "error") : null);
  const form = h("form", { class: "signin", "data-testid": "signin" },
    h("h1", { text: "AI Gateway console" }),
    h("p", { text: "Sign in with the admin key, or with your API key to see your own usage, keys and sessions. The key stays in this tab only." }),
    input,
    h("button", { type: "submit", text: "Sign in" }),
    status);
  const sso = h("div", { class: "sso" });
  offersSignIn().then((offered) => {
    if (offered) {
      sso.append(h("a", { class: "button", href: "ui/login", "data-testid": "sso",
        text: "Sign in with your organisation's account" }));
    }
  });
  form.append(sso);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    fill(status, notice("Checking…"));
    try {
      const { role, who } = await identify(key);
      session.save(key, role, who);
      input.value = "";
      const first = `#/${VIEWS[role][0][0]}`;
      if (location.hash === first) show();
      else location.hash = first; // the hashchange renders it
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401
        ? "This key was refused." : `Sign-in failed: ${error.message}`;
      fill(status, notice(text, "error"));
    }
  });
  fill(root, h("main", { class: "signin-page" }, form));
  input.focus();
}

async function signOut() {
  if (session.viaCookie()) await logout().catch(() => null);
  session.clear();
  rendering += 1;
  if (cleanup) cleanup();
  cleanup = null;
  history.replaceState(null, "", location.pathname);
  signInForm();
}

function whoText(role) {
  if (role === "admin" && !session.viaCookie()) return "admin";
  const team = session.team() ? ` (${session.team()})` : "";
  return `${role.replace("_", " ")}: ${session.who()}${team}`;
}

async function show() {
  const role = session.role();
  if ((!session.key() && !session.viaCookie()) || !VIEWS[role]) {
    signInForm();
    return;
  }
  const views = VIEWS[role];
  const name = location.hash.replace(/^#\/?/, "").split("/")[0];
  const [current, title, render] = views.find((v) => v[0] === name) || views[0];
  if (cleanup) cleanup();
  cleanup = null;
  const nav = h("nav", {}, views.map(([id, label]) =>
    h("a", { href: `#/${id}`, class: id === current ? "active" : "", text: label })));
  const main = h("main", { "data-view": current });
  fill(root,
    h("header", {},
      h("strong", { class: "brand", text: "AI Gateway" }),
      nav,
      h("span", { class: "who", "data-testid": "who", "data-role": role, text: whoText(role) }),
      h("button", { type: "button", class: "link", onclick: signOut, text: "Sign out" })),
    main);
  document.title = `${title} · AI Gateway console`;
  main.append(h("h1", { text: title }));
  const body = h("div", { class: "view" }, notice("Loading…"));
  main.append(body);
  const mine = ++rendering;
  try {
    const content = h("div");
    const stop = (await render(content)) || null;
    if (mine !== rendering) {
      if (stop) stop();
      return;
    }
    cleanup = stop;
    fill(body, content);
    body.dataset.ready = "true";
  } catch (error) {
    if (mine !== rendering) return;
    fill(body, notice(error instanceof ApiError && error.status === 401
      ? "The gateway refused this key (revoked or expired?). Sign out and sign in again."
      : `Could not load this view: ${error.message}`, "error"));
    body.dataset.ready = "error";
  }
}

window.addEventListener("hashchange", show);

async function start() {
  if (!session.key()) {
    const signedIn = await cookieSession().catch(() => null);
    if (signedIn) session.useCookie(signedIn);
  }
  show();
}
start();
