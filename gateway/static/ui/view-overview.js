// Overview (admin): requests, tokens, cost and error rate for today, 7 and 30 days, from
// GET /admin/spend?group_by=day and GET /admin/errors; daily charts; top users, models, teams.

import { api } from "./api.js";
import { h, section, table } from "./dom.js";
import { timeChart } from "./charts.js";
import {
  addDays, axisUSD, dayList, dayUnix, fmtInt, fmtPct, fmtUSD, nano, usdNumber, usdText, utcDay,
} from "./format.js";

export const RANGES = [["today", "Today", 1], ["7d", "7 days", 7], ["30d", "30 days", 30]];
const TOP = 5;

function totals(rows) {
  return rows.reduce((t, r) => ({
    requests: t.requests + r.requests,
    tokens: t.tokens + r.prompt_tokens + r.completion_tokens,
    cost: t.cost + r.cost,
    saved: t.saved + r.saved,
    hits: t.hits + r.hits,
    hitSaved: t.hitSaved + r.hitSaved,
    errors: t.errors + r.errors,
  }), { requests: 0, tokens: 0, cost: 0n, saved: 0n, hits: 0, hitSaved: 0n, errors: 0 });
}

function topTable(title, label, rows) {
  return section(title, table([
    { label, clip: true, value: (r) => r.group ?? "(none)" },
    { label: "Requests", num: true, value: (r) => fmtInt(r.requests) },
    { label: "Tokens", num: true, value: (r) => fmtInt(r.prompt_tokens + r.completion_tokens) },
    { label: "Cost", num: true, value: (r) => fmtUSD(r.cost_usd) },
  ], rows.slice(0, TOP), { empty: "No requests in the last 30 days." }));
}

export async function render(el) {
  const today = utcDay();
  const from = addDays(today, -29);
  const range = { from, to: today };
  const [byDay, failures, byUser, byModel, byTeam] = await Promise.all([
    api("admin/spend", { query: { group_by: "day", ...range } }),
    api("admin/errors", { query: range }),
    api("admin/spend", { query: { group_by: "user", ...range } }),
    api("admin/spend", { query: { group_by: "model", ...range } }),
    api("admin/spend", { query: { group_by: "team", ...range } }),
  ]);
  const spent = new Map(byDay.data.map((r) => [r.group, r]));
  const failed = new Map();
  for (const r of failures.data) failed.set(r.day, (failed.get(r.day) || 0) + r.requests);
  const days = dayList(from, today).map((day) => {
    const r = spent.get(day) || { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, cost_usd: "0", cache_savings_usd: "0" };
    return {
      day,
      requests: r.requests,
      prompt_tokens: r.prompt_tokens,
      completion_tokens: r.completion_tokens,
      cached_tokens: r.cached_tokens || 0,
      cost: nano(r.cost_usd),
      saved: nano(r.cache_savings_usd || "0"),
      hits: r.cache_hits || 0,
      hitSaved: nano(r.cache_saved_usd || "0"),
      errors: failed.get(day) || 0,
    };
  });

  const cards = RANGES.map(([id, label, n]) => {
    const t = totals(days.slice(-n));
    const cell = (metric, text) => h("td", { class: "num", "data-range": id, "data-metric": metric, text });
    return h("tr", {},
      h("th", { scope: "row", text: label }),
      cell("requests", fmtInt(t.requests)),
      cell("tokens", fmtInt(t.tokens)),
      cell("cost", `$${usdText(t.cost)}`),
      cell("saved", `$${usdText(t.saved)}`),
      cell("cache_hit_rate", fmtPct(t.hits, t.requests)),
      cell("cache_saved", `$${usdText(t.hitSaved)}`),
      cell("errors", fmtInt(t.errors)),
      cell("error_rate", fmtPct(t.errors, t.requests)));
  });
  el.append(section("Totals",
    h("div", { class: "table-wrap" }, h("table", { class: "totals", "data-testid": "totals" },
      h("thead", {}, h("tr", {}, ["", "Requests", "Tokens", "Cost (USD)", "Saved by the prompt cache",
        "Response cache hit rate", "Saved by the response cache", "Errors", "Error rate"]
        .map((t, i) => h("th", { class: i ? "num" : "", text: t })))),
      h("tbody", {}, cards))),
    h("p", { class: "hint", text: `UTC days ${from} to ${today}. Errors: requests that ended neither ok nor client_closed.` })));

  const charts = h("div", { class: "charts" });
  el.append(section("Last 30 days", charts));
  const x = days.map((d) => dayUnix(d.day));
  timeChart(charts, {
    title: "Requests and errors", days: x,
    series: [
      { label: "requests", values: days.map((d) => d.requests), bars: true },
      { label: "errors", values: days.map((d) => d.errors), bars: true },
    ],
    format: (v) => fmtInt(Math.round(v)),
  });
  timeChart(charts, {
    title: "Tokens", days: x,
    series: [
      { label: "prompt", values: days.map((d) => d.prompt_tokens) },
      { label: "completion", values: days.map((d) => d.completion_tokens) },
      { label: "cached (of prompt)", values: days.map((d) => d.cached_tokens) },
    ],
    format: (v) => fmtInt(Math.round(v)),
  });
  timeChart(charts, {
    title: "Cost (USD)", days: x,
    series: [{ label: "cost", values: days.map((d) => usdNumber(d.cost)), bars: true }],
    format: axisUSD,
  });
  timeChart(charts, {
    title: "Error rate", days: x,
    series: [{ label: "error rate", values: days.map((d) => (d.requests ? (100 * d.errors) / d.requests : 0)) }],
    format: (v) => `${v.toFixed(1)}%`,
  });

  el.append(h("div", { class: "columns" },
    topTable("Top users", "User", byUser.data), topTable("Top models", "Model", byModel.data),
    topTable("Top teams", "Team", byTeam.data)));
}
