// Teams and budgets (admin): teams (GET/POST/DELETE /admin/teams) and every budget's spend in
// its current period (GET /admin/spend from the request log), for teams and for keys.

import { api, can } from "./api.js";
import { append, confirmButton, field, fill, h, notice, section, select, table } from "./dom.js";
import { fmtUSD, nano, usdText, utcDay, weekStart } from "./format.js";

const PERIODS = [["", "—"], "daily", "weekly", "monthly", "total"];

/** [from, to] (UTC days, both included) of the budget period that contains `today`. */
export function periodRange(period, today) {
  if (period === "daily") return [today, today];
  if (period === "weekly") return [weekStart(today), today];
  if (period === "monthly") return [`${today.slice(0, 8)}01`, today];
  return ["1970-01-01", today]; // total
}

/** Spend per group (team or key) in each budget period the items use: Map period -> Map. */
async function spendByPeriod(groupBy, periods, today) {
  const out = new Map();
  await Promise.all([...new Set(periods.filter(Boolean))].map(async (period) => {
    const [from, to] = periodRange(period, today);
    const page = await api("admin/spend", { query: { group_by: groupBy, from, to } });
    out.set(period, new Map(page.data.map((r) => [r.group, nano(r.cost_usd)])));
  }));
  return out;
}

function budgetCells(budget, period, spent) {
  if (!budget) return ["—", fmtUSD(spent), "—", null];
  const limit = nano(budget);
  const left = limit - spent;
  const meter = h("meter", { min: 0, max: 1, low: 0.75, high: 0.9, optimum: 0,
    value: limit > 0n ? Math.min(1, Number(spent) / Number(limit)) : 1 });
  return [`$${usdText(limit)} / ${period}`, fmtUSD(spent), `$${usdText(left > 0n ? left : 0n)}`, meter];
}

function teamForm(onSaved) {
  const status = h("div");
  const form = h("form", { class: "grid-form", "data-testid": "create-team" },
    field("Id *", h("input", { name: "id", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,63}" })),
    field("Name", h("input", { name: "name" })),
    field("Budget (USD)", h("input", { name: "max_budget_usd", inputmode: "decimal" })),
    field("Budget period", select("budget_period", PERIODS)),
    field("Models", h("input", { name: "models", placeholder: "comma-separated; empty: any" })),
    field("RPM", h("input", { name: "rpm", type: "number", min: 0 })),
    field("Tokens per day", h("input", { name: "tpd", type: "number", min: 0 })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Create team" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = (name) => form.elements[name].value.trim();
    const body = { id: v("id") };
    if (v("name")) body.name = v("name");
    if (v("max_budget_usd")) body.max_budget_usd = v("max_budget_usd");
    if (v("budget_period")) body.budget_period = v("budget_period");
    if (v("models")) body.models = v("models").split(",").map((m) => m.trim()).filter(Boolean);
    for (const name of ["rpm", "tpd"]) if (v(name)) body[name] = Number(v(name));
    try {
      await api("admin/teams", { method: "POST", body });
      form.reset();
      fill(status, notice(`Team ${body.id} created.`));
      await onSaved();
    } catch (error) {
      fill(status, notice(error.message, "error"));
    }
  });
  return [form, status];
}

/** PATCH /admin/teams/{id} with a budget (an admin's or a team admin's own team). */
function budgetForm(onSaved) {
  const status = h("div");
  const form = h("form", { class: "grid-form", "data-testid": "team-budget" },
    field("Team *", h("input", { name: "team", required: true })),
    field("Budget (USD)", h("input", { name: "max_budget_usd", inputmode: "decimal", placeholder: "empty: none" })),
    field("Budget period", select("budget_period", PERIODS)),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Save budget" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = (name) => form.elements[name].value.trim();
    const body = { max_budget_usd: v("max_budget_usd") || null, budget_period: v("budget_period") || null };
    try {
      await api(`admin/teams/${encodeURIComponent(v("team"))}`, { method: "PATCH", body });
      fill(status, notice(`Budget of ${v("team")} saved.`));
      await onSaved();
    } catch (error) {
      fill(status, notice(error.message, "error"));
    }
  });
  return [form, status];
}

export async function render(el) {
  const teamsBox = h("div");
  const keysBox = h("div");
  const status = h("div");

  async function load() {
    const today = utcDay();
    const [teams, keys] = await Promise.all([api("admin/teams"), api("admin/keys")]);
    const budgetKeys = keys.data.filter((k) => k.status === "active" && k.max_budget_usd);
    const [teamSpend, keySpend] = await Promise.all([
      spendByPeriod("team", teams.data.map((t) => t.budget_period || "monthly"), today),
      spendByPeriod("key", budgetKeys.map((k) => k.budget_period), today),
    ]);
    fill(teamsBox, table([
      { label: "Team", key: "team", value: (t) => t.id },
      { label: "Name", value: (t) => t.name || null },
      { label: "Models", value: (t) => (t.models ? t.models.join(", ") : "any") },
      { label: "RPM", num: true, value: (t) => t.rpm },
      { label: "TPD", num: true, value: (t) => t.tpd },
      ...["Budget", "Spent", "Left", ""].map((label, i) => ({
        label, num: i < 3, key: ["budget", "spent", "left", "meter"][i],
        value: (t) => budgetCells(t.max_budget_usd, t.budget_period,
          teamSpend.get(t.budget_period || "monthly")?.get(t.id) || 0n)[i],
      })),
      { label: "", value: (t) => !can("teams") ? null : confirmButton("Delete", "Confirm delete", async () => {
        try {
          await api(`admin/teams/${encodeURIComponent(t.id)}`, { method: "DELETE" });
          await load();
        } catch (error) {
          fill(status, notice(error.message, "error"));
        }
      }) },
    ], teams.data, { empty: "No teams yet.", testid: "teams-table" }));
    fill(keysBox, table([
      { label: "Key", value: (k) => h("code", { text: k.key_prefix }) },
      { label: "User", value: (k) => k.user },
      { label: "Team", value: (k) => k.team },
      ...["Budget", "Spent", "Left", ""].map((label, i) => ({
        label, num: i < 3,
        value: (k) => budgetCells(k.max_budget_usd, k.budget_period,
          keySpend.get(k.budget_period)?.get(k.id) || 0n)[i],
      })),
    ], budgetKeys, { empty: "No active key has a budget." }));
  }

  const [form, formStatus] = teamForm(load);
  const budget = can("budgets") ? budgetForm(load) : null;
  append(el, [
    section("Teams", h("p", { class: "hint", text: "Spend is summed from the request log over the budget's current UTC period (monthly when a team has no budget)." }), status, teamsBox),
    budget ? section("Set a team's budget", ...budget) : null,
    section("Keys with a budget", keysBox),
    can("teams") ? section("Create a team", form, formStatus) : null]);
  await load();
}
