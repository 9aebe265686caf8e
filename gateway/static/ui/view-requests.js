// The request log: filters (user, model, status, endpoint, time), newest first, paged with
// `before`; a row opens its details. Admins read GET /admin/requests, a user GET /v1/ai/requests.

import { api } from "./api.js";
import { chip, details, field, fill, h, notice, section, select, table } from "./dom.js";
import { fmtInt, fmtTime, fmtUSD, localToUtc } from "./format.js";

const STATUSES = [["", "any"], "ok", ["error", "any failure"], "upstream_error", "rejected", "client_closed",
  "tool_error", "rate_limited"];
const ENDPOINTS = [["", "any"], "chat", "responses", "messages", "embeddings", "completions", "mcp"];
const PAGE = 50;

function statusChip(r) {
  const kind = r.status === "ok" ? "ok" : r.status === "client_closed" ? "warn" : "bad";
  return chip(`${r.status} ${r.status_code}`, kind);
}

function requestDetails(r, admin) {
  const pairs = [
    ["id", r.id], ["time (UTC)", fmtTime(r.created_at)], ["user", r.user], ["key id", r.key_id],
    ["team", r.team], ["endpoint", r.endpoint], ["model", r.model], ["provider", r.provider],
    ["upstream model", r.upstream_model], ["deployment", r.provider && r.upstream_model ? `${r.provider}/${r.upstream_model}` : null],
    ["stream", r.stream ? "yes" : "no"], ["status", r.status], ["HTTP status", r.status_code],
    ["prompt tokens", fmtInt(r.prompt_tokens)], ["completion tokens", fmtInt(r.completion_tokens)],
    ["total tokens", fmtInt(r.total_tokens)], ["cached tokens (of prompt)", fmtInt(r.cached_tokens)],
    ["cache write tokens (of prompt)", fmtInt(r.cache_write_tokens)],
    ["reasoning tokens (of completion)", fmtInt(r.reasoning_tokens)],
    ["usage estimated", r.usage_estimated ? "yes" : "no"],
    ["cost", fmtUSD(r.cost_usd)], ["saved by the prompt cache", fmtUSD(r.cache_savings_usd)],
    ["response cache hit", r.cache_hit ? "yes" : "no"],
    ["tokens saved by the response cache", r.cache_hit ? fmtInt(r.cache_saved_tokens) : null],
    ["saved by the response cache", r.cache_hit ? fmtUSD(r.cache_saved_usd) : null],
    ["latency", `${fmtInt(r.latency_ms)} ms`],
    ["time to first token", r.ttft_ms === null ? null : `${fmtInt(r.ttft_ms)} ms`],
    ["attempts", r.attempts], ["session", r.session_id], ["error", r.error],
    ["tags", r.tags && r.tags.length ? r.tags.join(", ") : null],
  ];
  if (admin) pairs.push(["key metadata", r.metadata ? JSON.stringify(r.metadata) : null]);
  return details(pairs, "request-details");
}

function view({ path, admin }) {
  return async function render(el) {
    const input = (name, placeholder) => h("input", { name, placeholder, type: "text" });
    const controls = [
      admin ? field("User", input("user", "any")) : null,
      field("Model", input("model", "any")),
      field("Status", select("status", STATUSES)),
      field("Endpoint", select("endpoint", ENDPOINTS)),
      field("From (UTC)", h("input", { name: "from", type: "datetime-local" })),
      field("To (UTC)", h("input", { name: "to", type: "datetime-local" })),
      h("button", { type: "submit", text: "Search" }),
    ];
    const form = h("form", { class: "filters", "data-testid": "log-filters" }, controls);
    const list = h("div");
    const more = h("button", { type: "button", class: "more", text: "Older requests", hidden: true });
    const panel = h("aside", { class: "detail-panel", "data-testid": "detail-panel" },
      h("p", { class: "hint", text: "Pick a request to see its details." }));
    let rows = [];
    let query = {};

    async function open(r, tr) {
      for (const other of list.querySelectorAll("tr.selected")) other.classList.remove("selected");
      tr.classList.add("selected");
      fill(panel, notice("Loading…"));
      try {
        const full = admin ? await api(`admin/requests/${encodeURIComponent(r.id)}`) : r;
        fill(panel, h("h3", { text: "Request" }), requestDetails(full, admin));
      } catch (error) {
        fill(panel, notice(error.message, "error"));
      }
    }

    function draw() {
      fill(list, table([
        { label: "Time (UTC)", value: (r) => fmtTime(r.created_at) },
        admin ? { label: "User", key: "user", value: (r) => r.user } : null,
        { label: "Model", key: "model", value: (r) => r.model },
        { label: "Endpoint", value: (r) => r.endpoint },
        { label: "Status", key: "status", value: statusChip },
        { label: "Tokens", num: true, value: (r) => fmtInt(r.total_tokens) },
        { label: "Cost", num: true, value: (r) => fmtUSD(r.cost_usd) },
        { label: "Latency", num: true, value: (r) => `${fmtInt(r.latency_ms)} ms` },
      ].filter(Boolean), rows, { onRow: open, empty: "No request matches.", testid: "log-table" }));
    }

    async function load(before) {
      const page = await api(path, { query: { ...query, limit: PAGE, before } });
      rows = before ? rows.concat(page.data) : page.data;
      more.hidden = !page.has_more;
      draw();
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");
      query = {
        user: v("user"), model: v("model"), status: v("status"), endpoint: v("endpoint"),
        from: localToUtc(v("from")), to: localToUtc(v("to")),
      };
      try {
        await load();
      } catch (error) {
        fill(list, notice(error.message, "error"));
      }
    });
    more.addEventListener("click", () => load(rows[rows.length - 1].id).catch((error) =>
      fill(list, notice(error.message, "error"))));
    el.append(section("Search", form), h("div", { class: "split" },
      h("div", { class: "split-main" }, list, more), panel));
    await load();
  };
}

export const renderAdmin = view({ path: "admin/requests", admin: true });
export const renderOwn = view({ path: "v1/ai/requests", admin: false });
