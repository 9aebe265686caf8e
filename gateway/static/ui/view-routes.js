// Routes (admin): models, deployments, weights, health and cooldowns from GET /admin/routes,
// refreshed every few seconds while the view is open.

import { api } from "./api.js";
import { chip, fill, h, notice, section, table } from "./dom.js";

const EVERY_MS = 3000;

function rows(routes) {
  const out = [];
  for (const route of routes.data) {
    for (const d of route.deployments) out.push({ route, d });
    if (!route.deployments.length) out.push({ route, d: null });
  }
  return out;
}

function stateChip(d) {
  if (!d.configured) return chip("not configured", "off");
  if (!d.state) return chip("wildcard", "");
  return chip(d.state, d.state === "healthy" ? "ok" : d.state === "cooling_down" ? "bad" : "warn");
}

export async function render(el) {
  const box = h("div");
  const stamp = h("p", { class: "hint", "data-testid": "routes-updated" });
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const routes = await api("admin/routes");
      if (stopped) return;
      fill(box, table([
        { label: "Model", key: "model", value: (r) => r.route.model },
        { label: "Fallbacks", value: (r) => r.route.fallbacks.join(", ") || null },
        { label: "Deployment", key: "deployment", value: (r) => r.d && r.d.deployment },
        { label: "Weight", num: true, value: (r) => r.d && r.d.weight },
        { label: "State", key: "state", value: (r) => r.d && stateChip(r.d) },
        { label: "Failures", num: true, value: (r) => r.d && r.d.consecutive_failures },
        { label: "Cooldown left", num: true, value: (r) => (r.d && r.d.cooldown_remaining_s ? `${r.d.cooldown_remaining_s.toFixed(1)} s` : null) },
        { label: "Cooldowns", num: true, value: (r) => r.d && r.d.cooldowns },
        { label: "Last error", value: (r) => r.d && r.d.last_error },
      ], rows(routes), { empty: "No models configured.", testid: "routes-table" }));
      stamp.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC; refreshed every ${EVERY_MS / 1000} s.`;
      stamp.dataset.refreshes = String(Number(stamp.dataset.refreshes || 0) + 1);
    } catch (error) {
      if (!stopped) fill(box, notice(error.message, "error"));
    }
    if (!stopped) timer = setTimeout(refresh, EVERY_MS);
  }

  el.append(section("Routing table", stamp, box));
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
