// A signed-in user's sessions (GET /v1/ai/sessions, newest-updated first, paged with `after`)
// and one conversation (GET /v1/ai/sessions/{id}/messages, paged back with `before`).

import { api } from "./api.js";
import { chip, fill, h, notice, section, table } from "./dom.js";
import { fmtInt, fmtTime } from "./format.js";

const PAGE = 20;
const MESSAGES = 50;

function content(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

async function conversation(box, s) {
  let messages = [];
  let hasMore = false;
  const older = h("button", { type: "button", class: "more", text: "Earlier messages" });
  const list = h("ol", { class: "messages", "data-testid": "messages" });

  function draw() {
    fill(list, messages.map((m) => h("li", { class: `message role-${m.role}` },
      h("div", { class: "meta" }, chip(m.role, m.role === "assistant" ? "ok" : ""),
        ` ${fmtTime(m.created_at)} UTC · ${fmtInt(m.tokens)} tokens${m.model ? ` · ${m.model}` : ""}`),
      h("pre", { class: "content", text: content(m.content) }))));
    older.hidden = !hasMore;
  }

  async function load(before) {
    const page = await api(`v1/ai/sessions/${encodeURIComponent(s.id)}/messages`, { query: { limit: MESSAGES, before } });
    messages = before ? page.data.concat(messages) : page.data;
    hasMore = page.has_more;
    draw();
  }

  older.addEventListener("click", () => load(messages[0].id).catch((e) => box.append(notice(e.message, "error"))));
  fill(box, h("h3", { "data-testid": "conversation-title", text: s.title || "(untitled)" }),
    h("p", { class: "hint", text: `${s.id} · ${s.model || "no model"} · ${fmtInt(s.message_count)} messages · ${fmtInt(s.total_tokens)} tokens` }),
    older, list);
  await load();
}

export async function render(el) {
  const list = h("div");
  const more = h("button", { type: "button", class: "more", text: "More sessions", hidden: true });
  const box = h("aside", { class: "detail-panel conversation", "data-testid": "conversation" },
    h("p", { class: "hint", text: "Pick a session to read it." }));
  let sessions = [];

  function draw() {
    fill(list, table([
      { label: "Title", key: "title", value: (s) => s.title || "(untitled)" },
      { label: "Model", value: (s) => s.model },
      { label: "Messages", num: true, value: (s) => fmtInt(s.message_count) },
      { label: "Tokens", num: true, value: (s) => fmtInt(s.total_tokens) },
      { label: "Status", value: (s) => s.status },
      { label: "Updated (UTC)", value: (s) => fmtTime(s.updated_at) },
    ], sessions, {
      empty: "No sessions yet.",
      testid: "sessions-table",
      onRow: (s, tr) => {
        for (const other of list.querySelectorAll("tr.selected")) other.classList.remove("selected");
        tr.classList.add("selected");
        conversation(box, s).catch((e) => fill(box, notice(e.message, "error")));
      },
    }));
  }

  async function load(after) {
    const page = await api("v1/ai/sessions", { query: { limit: PAGE, after } });
    sessions = after ? sessions.concat(page.data) : page.data;
    more.hidden = !page.has_more;
    draw();
  }

  more.addEventListener("click", () => load(sessions[sessions.length - 1].id).catch((e) => list.append(notice(e.message, "error"))));
  el.append(h("div", { class: "split" }, h("div", { class: "split-main" }, section("My sessions", list, more)), box));
  await load();
}
