// MCP (admin): the upstream MCP servers (state, tools) from GET /admin/mcp, and the latest tool
// calls from GET /admin/requests?endpoint=mcp; refreshed every few seconds while open.

import { api } from "./api.js";
import { chip, fill, h, notice, section, table } from "./dom.js";
import { fmtInt, fmtTime } from "./format.js";

const EVERY_MS = 3000;
const RECENT = 20;

function stateChip(state) {
  return chip(state, state === "up" ? "ok" : state === "down" ? "bad" : "warn");
}

function callChip(r) {
  return chip(r.status, r.status === "ok" ? "ok" : r.status === "tool_error" ? "warn" : "bad");
}

export async function render(el) {
  const servers = h("div");
  const tools = h("div");
  const calls = h("div");
  const stamp = h("p", { class: "hint", "data-testid": "mcp-updated" });
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const [listed, recent] = await Promise.all([
        api("admin/mcp"),
        api(`admin/requests?endpoint=mcp&limit=${RECENT}`),
      ]);
      if (stopped) return;
      fill(servers, table([
        { label: "Server", key: "name", value: (s) => s.name },
        { label: "Transport", value: (s) => s.transport },
        { label: "Target", clip: true, value: (s) => s.target },
        { label: "State", key: "state", value: (s) => stateChip(s.state) },
        { label: "Since (UTC)", value: (s) => fmtTime(s.since) },
        { label: "Tools", num: true, value: (s) => s.tools.length },
        { label: "Restarts", num: true, value: (s) => s.restarts },
        { label: "Last error", clip: true, value: (s) => s.error },
      ], listed.data, { empty: "No MCP servers configured (mcp_servers).", testid: "mcp-servers" }));
      const rows = listed.data.flatMap((s) => s.tools.map((t) => ({ server: s.name, ...t })));
      fill(tools, table([
        { label: "Tool", key: "tool", value: (t) => t.name },
        { label: "Server", value: (t) => t.server },
        { label: "Description", clip: true, value: (t) => t.description },
      ], rows, { empty: "No tools: no server is up.", testid: "mcp-tools" }));
      fill(calls, table([
        { label: "Time (UTC)", value: (r) => fmtTime(r.created_at) },
        { label: "User", value: (r) => r.user },
        { label: "Tool", key: "tool", value: (r) => r.model },
        { label: "Server", value: (r) => r.provider },
        { label: "Status", key: "status", value: callChip },
        { label: "Duration", num: true, value: (r) => `${fmtInt(r.latency_ms)} ms` },
        { label: "Error", clip: true, value: (r) => r.error },
      ], recent.data, { empty: "No tool calls yet.", testid: "mcp-calls" }));
      stamp.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC; refreshed every ${EVERY_MS / 1000} s.`;
      stamp.dataset.refreshes = String(Number(stamp.dataset.refreshes || 0) + 1);
    } catch (error) {
      if (!stopped) fill(servers, notice(error.message, "error"));
    }
    if (!stopped) timer = setTimeout(refresh, EVERY_MS);
  }

  el.append(section("MCP servers", stamp, servers), section("Tools", tools),
    section("Recent tool calls", calls));
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
