// Keys (admin): search the keys (GET /admin/keys), create one with scopes (POST /admin/keys;
// the new key is shown once, here, and kept nowhere), revoke one (DELETE /admin/keys/{id}).

import { api, can, session } from "./api.js";
import { append, chip, confirmButton, field, fill, h, notice, section, select, table } from "./dom.js";
import { fmtTime, localToUtc } from "./format.js";

const PERIODS = [["", "—"], "daily", "weekly", "monthly", "total"];

export function scopesText(k) {
  const parts = [];
  if (k.models) parts.push(`models: ${k.models.join(", ")}`);
  if (k.rpm !== null && k.rpm !== undefined) parts.push(`rpm ${k.rpm}`);
  if (k.tpd !== null && k.tpd !== undefined) parts.push(`tpd ${k.tpd}`);
  if (k.max_budget_usd) parts.push(`budget $${k.max_budget_usd}/${k.budget_period || "?"}`);
  if (k.expires_at) parts.push(`expires ${fmtTime(k.expires_at)}`);
  return parts.join(" · ") || "—";
}

/** The create form's values as a POST /admin/keys body (empty fields left out). */
function keyBody(form) {
  const v = (name) => form.elements[name].value.trim();
  const body = { user: v("user") };
  if (v("name")) body.name = v("name");
  if (v("tier")) body.tier = v("tier");
  if (v("team")) body.team = v("team");
  if (v("models")) body.models = v("models").split(",").map((m) => m.trim()).filter(Boolean);
  if (v("expires_at")) body.expires_at = localToUtc(v("expires_at"));
  for (const name of ["rpm", "tpd"]) if (v(name)) body[name] = Number(v(name));
  if (v("max_budget_usd")) body.max_budget_usd = v("max_budget_usd");
  if (v("budget_period")) body.budget_period = v("budget_period");
  if (v("metadata")) body.metadata = JSON.parse(v("metadata"));
  return body;
}

const teamAdmin = () => session.role() === "team_admin" && Boolean(session.team());

function createForm(onCreated) {
  const shown = h("div", { class: "new-key-slot" });
  const form = h("form", { class: "grid-form", "data-testid": "create-key" },
    field("User *", h("input", { name: "user", required: true, maxlength: 128 })),
    field("Name", h("input", { name: "name", maxlength: 128 })),
    field("Tier", h("input", { name: "tier", placeholder: "default tier" })),
    field("Team", teamAdmin() // a team admin's keys are their team's
      ? h("input", { name: "team", value: session.team(), readonly: true })
      : h("input", { name: "team" })),
    field("Models", h("input", { name: "models", placeholder: "gpt-4o, openai/*" }), "comma-separated; empty: any"),
    field("Expires (UTC)", h("input", { name: "expires_at", type: "datetime-local" })),
    field("RPM", h("input", { name: "rpm", type: "number", min: 0 })),
    field("Tokens per day", h("input", { name: "tpd", type: "number", min: 0 })),
    field("Budget (USD)", h("input", { name: "max_budget_usd", inputmode: "decimal", placeholder: "12.50" })),
    field("Budget period", select("budget_period", PERIODS)),
    field("Metadata (JSON object)", h("textarea", { name: "metadata", rows: 2, placeholder: '{"cost_center": "r&d"}' })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Create key" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("admin/keys", { method: "POST", body: keyBody(form) });
      form.reset();
      const code = h("code", { "data-testid": "new-key", text: created.key });
      const copy = h("button", { type: "button", text: "Copy" });
      copy.addEventListener("click", () => navigator.clipboard.writeText(code.textContent));
      fill(shown, h("div", { class: "new-key" },
        h("p", { text: `New key for ${created.user} (${created.key_prefix}…). Copy it now: it is shown only this once.` }),
        h("div", { class: "key-line" }, code, copy)));
      await onCreated();
    } catch (error) {
      fill(shown, notice(error instanceof SyntaxError ? `Metadata is not JSON: ${error.message}` : error.message, "error"));
    }
  });
  return [form, shown];
}

export async function render(el) {
  const search = h("input", { type: "search", name: "q", placeholder: "Search prefix, user, name, team…" });
  const showRevoked = h("input", { type: "checkbox", name: "revoked" });
  const list = h("div");
  const status = h("div");
  let keys = [];

  function draw() {
    const q = search.value.trim().toLowerCase();
    const rows = keys.filter((k) => (showRevoked.checked || k.status === "active") &&
      (!q || [k.key_prefix, k.user, k.name, k.team, k.id].some((s) => s && String(s).toLowerCase().includes(q))));
    fill(list, table([
      { label: "Prefix", key: "prefix", value: (k) => h("code", { text: k.key_prefix }) },
      { label: "User", key: "user", value: (k) => k.user },
      { label: "Name", value: (k) => k.name || null },
      { label: "Tier", value: (k) => k.tier },
      { label: "Team", value: (k) => k.team },
      { label: "Scopes", value: (k) => scopesText(k) },
      { label: "Status", key: "status", value: (k) => chip(k.status, k.status === "active" ? "ok" : "off") },
      { label: "Created", value: (k) => fmtTime(k.created_at) },
      { label: "Last used", value: (k) => fmtTime(k.last_used_at) },
      { label: "", value: (k) => (k.status === "active" && can("keys")
        ? confirmButton("Revoke", "Confirm revoke", () => revoke(k)) : null) },
    ], rows, { empty: "No key matches.", testid: "keys-table" }));
  }

  async function load() {
    keys = (await api("admin/keys")).data.reverse(); // newest first
    draw();
  }

  async function revoke(k) {
    try {
      await api(`admin/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
      await load();
      fill(status, notice(`Revoked ${k.key_prefix}…`));
    } catch (error) {
      fill(status, notice(error.message, "error"));
    }
  }

  search.addEventListener("input", draw);
  showRevoked.addEventListener("change", draw);
  const [form, shown] = createForm(load);
  append(el, [
    can("keys") ? section("Create a key", form, shown) : null,
    section("Keys", h("div", { class: "filters" }, search,
      h("label", { class: "check" }, showRevoked, " show revoked")), status, list)]);
  await load();
}
