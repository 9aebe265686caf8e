// A signed-in user's own pages: usage today, quota and budgets (GET /v1/ai/usage), and their
// keys' status and scopes (GET /v1/ai/keys, which never returns a key).

import { api } from "./api.js";
import { chip, details, h, section, table } from "./dom.js";
import { barChart } from "./charts.js";
import { fmtInt, fmtPct, fmtTime, fmtUSD } from "./format.js";
import { scopesText } from "./view-keys.js";

const limitText = (v) => (v === null || v === undefined ? "unlimited" : fmtInt(v));

/** Budgets as the usage answer gives them (a list, or an object by scope), as table rows. */
function budgetRows(budgets) {
  if (!budgets) return [];
  if (Array.isArray(budgets)) return budgets;
  return Object.entries(budgets).map(([scope, b]) => ({ scope, ...(b && typeof b === "object" ? b : { value: b }) }));
}

function budgetTable(budgets) {
  const rows = budgetRows(budgets);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return table(columns.map((c) => ({
    label: c.replaceAll("_", " "),
    key: c,
    value: (r) => (r[c] !== null && typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c]),
  })), rows, { empty: "No budget applies to you.", testid: "budgets" });
}

export async function renderUsage(el) {
  const usage = await api("v1/ai/usage");
  el.append(section(`Today (${usage.day}, UTC)`, details([
    ["user", usage.user], ["tier", usage.tier],
    ["requests per minute", limitText(usage.requests.limit)],
    ["requests left now", limitText(usage.requests.remaining)],
    ["tokens today", fmtInt(usage.tokens.used)],
    ["daily token limit", limitText(usage.tokens.limit)],
    ["tokens left today", limitText(usage.tokens.remaining)],
    ["resets in", usage.tokens.reset],
  ], "my-usage")));
  el.append(section("Budgets", budgetTable(usage.budgets)));
  const rows = usage.by_model;
  const byModel = section("By model today", table([
    { label: "Model", key: "model", value: (r) => r.model },
    { label: "Requests", num: true, value: (r) => fmtInt(r.requests) },
    { label: "Prompt tokens", num: true, value: (r) => fmtInt(r.prompt_tokens) },
    { label: "Completion tokens", num: true, value: (r) => fmtInt(r.completion_tokens) },
    { label: "Cost", num: true, value: (r) => fmtUSD(r.cost_usd) },
    { label: "Cache hit rate", num: true, value: (r) => fmtPct(r.cache_hits || 0, r.requests) },
    { label: "Saved by the response cache", num: true, value: (r) => fmtUSD(r.cache_saved_usd || "0") },
  ], rows, { empty: "No requests today.", testid: "my-models" }));
  el.append(byModel);
  if (rows.length) {
    barChart(byModel, {
      title: "Tokens by model today",
      labels: rows.map((r) => r.model),
      values: rows.map((r) => r.prompt_tokens + r.completion_tokens),
      label: "tokens",
      format: (v) => fmtInt(Math.round(v)),
    });
  }
}

export async function renderKeys(el) {
  const keys = await api("v1/ai/keys");
  const current = keys.data.some((k) => k.current);
  el.append(section("My keys", current ? null : h("p", { class: "hint", text: "You signed in with a key from the gateway's config file; it is not listed here." }),
    table([
      { label: "Prefix", key: "prefix", value: (k) => h("code", { text: k.key_prefix }) },
      { label: "Name", value: (k) => k.name || null },
      { label: "Status", key: "status", value: (k) => chip(k.expired ? "expired" : k.status, k.status === "active" && !k.expired ? "ok" : "off") },
      { label: "This key", value: (k) => (k.current ? "yes" : "") },
      { label: "Tier", value: (k) => k.tier },
      { label: "Team", value: (k) => k.team },
      { label: "Scopes", value: (k) => scopesText(k) },
      { label: "Created", value: (k) => fmtTime(k.created_at) },
      { label: "Last used", value: (k) => fmtTime(k.last_used_at) },
    ], keys.data, { empty: "You have no keys in the gateway's database.", testid: "my-keys" })));
}
