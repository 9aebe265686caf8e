// Usage explorer (admin): GET /admin/spend grouped by user, key, team, model, tag or day over a
// date range; a table, a chart, and a CSV file made in the browser.

import { api } from "./api.js";
import { field, fill, h, notice, section, select, table } from "./dom.js";
import { barChart, timeChart } from "./charts.js";
import {
  addDays, axisUSD, dayList, dayUnix, download, fmtInt, fmtPct, fmtUSD, nano, toCSV, usdNumber,
  utcDay,
} from "./format.js";

const GROUPS = ["user", "key", "team", "model", "tag", "day"];
const CHART_BARS = 20;

function chart(el, groupBy, rows, from, to) {
  if (groupBy === "day") {
    const byDay = new Map(rows.map((r) => [r.group, r]));
    const days = dayList(from, to);
    timeChart(el, {
      title: "Cost per day (USD)",
      days: days.map(dayUnix),
      series: [{ label: "cost", values: days.map((d) => usdNumber(nano(byDay.get(d)?.cost_usd))), bars: true }],
      format: axisUSD,
    });
    return;
  }
  const top = rows.slice(0, CHART_BARS);
  barChart(el, {
    title: `Cost by ${groupBy} (top ${Math.min(rows.length, CHART_BARS)})`,
    labels: top.map((r) => r.group ?? "(none)"),
    values: top.map((r) => usdNumber(nano(r.cost_usd))),
    label: "cost",
    format: axisUSD,
  });
}

export async function render(el) {
  const today = utcDay();
  const groupBy = select("group_by", GROUPS, "model");
  const from = h("input", { type: "date", name: "from", value: addDays(today, -29), required: true });
  const to = h("input", { type: "date", name: "to", value: today, required: true });
  const user = h("input", { type: "text", name: "user", placeholder: "any user" });
  const csv = h("button", { type: "button", disabled: true, text: "Download CSV" });
  const out = h("div", { class: "results" });
  const form = h("form", { class: "filters" },
    field("Group by", groupBy), field("From (UTC)", from), field("To (UTC)", to),
    field("User", user), h("button", { type: "submit", text: "Show" }), csv);
  let current = null;

  async function run() {
    fill(out, notice("Loading…"));
    const query = { group_by: groupBy.value, from: from.value, to: to.value, user: user.value.trim() };
    try {
      const page = await api("admin/spend", { query });
      current = page;
      csv.disabled = false;
      const rows = page.data;
      fill(out);
      const charts = h("div", { class: "charts" });
      out.append(charts);
      chart(charts, page.group_by, rows, page.from, page.to);
      out.append(table([
        { label: page.group_by, key: "group", value: (r) => r.group ?? "(none)" },
        { label: "Requests", num: true, value: (r) => fmtInt(r.requests) },
        { label: "Prompt tokens", num: true, value: (r) => fmtInt(r.prompt_tokens) },
        { label: "Completion tokens", num: true, value: (r) => fmtInt(r.completion_tokens) },
        { label: "Cost", num: true, key: "cost", value: (r) => fmtUSD(r.cost_usd) },
        { label: "Cache hit rate", num: true, key: "hit-rate", value: (r) => fmtPct(r.cache_hits || 0, r.requests) },
        { label: "Saved by the response cache", num: true, key: "cache-saved", value: (r) => fmtUSD(r.cache_saved_usd || "0") },
      ], rows, { empty: "No requests in this range.", testid: "usage-table" }));
    } catch (error) {
      fill(out, notice(error.message, "error"));
    }
  }

  csv.addEventListener("click", () => {
    if (!current) return;
    const rows = current.data.map((r) => [r.group, r.requests, r.prompt_tokens, r.completion_tokens, r.cost_usd,
      r.cache_hits, r.cache_saved_usd]);
    download(`spend-by-${current.group_by}-${current.from}-to-${current.to}.csv`,
      toCSV([current.group_by, "requests", "prompt_tokens", "completion_tokens", "cost_usd",
        "cache_hits", "cache_saved_usd"], rows));
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  el.append(section("Spend", form, out));
  await run();
}
