// Users (admin): the users seen in keys and in the last 30 days of spend, and their quota
// override (PUT /admin/users/{uid}/quota: tier, rpm, tpd, team, budget), with today's usage.

import { api, can } from "./api.js";
import { append, details, field, fill, h, notice, section, select, table } from "./dom.js";
import { addDays, fmtInt, fmtUSD, utcDay } from "./format.js";

const PERIODS = [["", "—"], "daily", "weekly", "monthly", "total"];

function quotaForm(onSaved) {
  const result = h("div", { "data-testid": "quota-result" });
  const form = h("form", { class: "grid-form", "data-testid": "quota-form" },
    field("User *", h("input", { name: "uid", required: true })),
    field("Tier", h("input", { name: "tier", placeholder: "the tier's limits" })),
    field("RPM", h("input", { name: "rpm", type: "number", min: 0 }), "0: unlimited; empty: the tier's"),
    field("Tokens per day", h("input", { name: "tpd", type: "number", min: 0 })),
    field("Team", h("input", { name: "team" })),
    field("Budget (USD)", h("input", { name: "max_budget_usd", inputmode: "decimal" })),
    field("Budget period", select("budget_period", PERIODS)),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Save override" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = (name) => form.elements[name].value.trim();
    const num = (name) => (v(name) === "" ? null : Number(v(name)));
    const body = {
      tier: v("tier") || null, rpm: num("rpm"), tpd: num("tpd"), team: v("team") || null,
      max_budget_usd: v("max_budget_usd") || null, budget_period: v("budget_period") || null,
    };
    try {
      const saved = await api(`admin/users/${encodeURIComponent(v("uid"))}/quota`, { method: "PUT", body });
      fill(result, notice(`Saved the override of ${saved.user}.`), details([
        ["tier", saved.tier], ["rpm", saved.rpm], ["tpd", saved.tpd], ["team", saved.team],
        ["budget", saved.max_budget_usd ? `$${saved.max_budget_usd} / ${saved.budget_period}` : null],
        ["effective rpm", saved.effective ? saved.effective.rpm || "unlimited" : null],
        ["effective tpd", saved.effective ? saved.effective.tpd || "unlimited" : null],
      ]));
      await onSaved(saved.user);
    } catch (error) {
      fill(result, notice(error.message, "error"));
    }
  });
  return [form, result];
}

export async function render(el) {
  const list = h("div");
  const today = h("div");
  const [form, result] = quotaForm((uid) => showToday(uid));

  async function showToday(uid) {
    const usage = await api("admin/usage", { query: { user: uid } });
    fill(today, h("h3", { text: `${uid} today (${usage.day})` }), table([
      { label: "Model", value: (r) => r.model },
      { label: "Requests", num: true, value: (r) => fmtInt(r.requests) },
      { label: "Tokens", num: true, value: (r) => fmtInt(r.prompt_tokens + r.completion_tokens) },
      { label: "Cost", num: true, value: (r) => fmtUSD(r.cost_usd) },
    ], usage.data, { empty: "No requests today." }));
  }

  const to = utcDay();
  const [keys, spend] = await Promise.all([
    api("admin/keys"),
    api("admin/spend", { query: { group_by: "user", from: addDays(to, -29), to } }),
  ]);
  const users = new Map();
  const entry = (uid) => users.get(uid) || users.set(uid, { uid, keys: 0, requests: 0, cost: "0" }).get(uid);
  for (const k of keys.data) if (k.status === "active") entry(k.user).keys += 1;
  for (const r of spend.data) if (r.group !== null) Object.assign(entry(r.group), { requests: r.requests, cost: r.cost_usd });
  const rows = [...users.values()].sort((a, b) => a.uid.localeCompare(b.uid));
  fill(list, table([
    { label: "User", key: "user", value: (u) => u.uid },
    { label: "Active keys", num: true, value: (u) => u.keys },
    { label: "Requests (30 d)", num: true, value: (u) => fmtInt(u.requests) },
    { label: "Cost (30 d)", num: true, value: (u) => fmtUSD(u.cost) },
  ], rows, {
    empty: "No users yet.",
    testid: "users-table",
    onRow: (u) => {
      form.elements.uid.value = u.uid;
      if (can("quotas")) form.elements.tier.focus();
      showToday(u.uid).catch((error) => fill(today, notice(error.message, "error")));
    },
  }));
  append(el, [
    can("quotas")
      ? section("Quota override", h("p", { class: "hint", text: "Empty fields are not overridden (the tier's limits apply). Pick a user below to fill the form." }), form, result, today)
      : section("Today", h("p", { class: "hint", text: "Pick a user below to see their usage today." }), today),
    section("Users", list)]);
}
