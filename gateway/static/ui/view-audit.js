// Audit log (admin, viewer, team admin): every change made through the admin API or the console
// (GET /admin/audit): who, in which role, what, and the object before and after.

import { api } from "./api.js";
import { fill, h, notice, section, table } from "./dom.js";
import { fmtTime } from "./format.js";

/** The fields that differ between before and after, as "field: old → new" lines. */
function changes(entry) {
  const before = entry.before || {};
  const after = entry.after || {};
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((n) => !["object", "created_at", "updated_at", "last_used_at"].includes(n))
    .filter((n) => JSON.stringify(before[n]) !== JSON.stringify(after[n]));
  const show = (v) => (v === undefined || v === null ? "—" : typeof v === "string" ? v : JSON.stringify(v));
  if (!entry.before) return "created";
  if (!entry.after) return "deleted";
  return names.map((n) => `${n}: ${show(before[n])} → ${show(after[n])}`).join("\n") || "—";
}

export async function render(el) {
  const actor = h("input", { type: "search", name: "actor", placeholder: "Actor (e.g. admin-key)" });
  const from = h("input", { type: "date", name: "from" });
  const to = h("input", { type: "date", name: "to" });
  const list = h("div");

  async function load() {
    try {
      const page = await api("admin/audit", {
        query: { actor: actor.value.trim(), from: from.value, to: to.value, limit: 200 },
      });
      fill(list, table([
        { label: "Time", value: (e) => fmtTime(e.created_at) },
        { label: "Actor", key: "actor", value: (e) => e.actor },
        { label: "Role", key: "role", value: (e) => e.role },
        { label: "Action", key: "action", value: (e) => e.action },
        { label: "Target", value: (e) => e.target },
        { label: "Team", value: (e) => e.team },
        { label: "Change", value: (e) => h("pre", { class: "change", text: changes(e) }) },
      ], page.data, { empty: "No change recorded yet.", testid: "audit-table" }));
    } catch (error) {
      fill(list, notice(error.message, "error"));
    }
  }

  for (const input of [actor, from, to]) input.addEventListener("change", load);
  el.append(section("Changes", h("div", { class: "filters" }, actor, from, to), list));
  await load();
}
