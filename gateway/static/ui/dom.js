// Builds the page from data with text nodes and properties only: no HTML string ever reaches
// the DOM, so a value a user or an upstream chose (a model name, a title) is shown as text.

/** An element: props set attributes (or properties for non-strings), `on*` add listeners. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (typeof value !== "string" && name in el) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append nodes and strings (as text nodes); null, undefined and false are skipped. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A titled section of a view. */
export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", { text: title }), ...children);
}

/** A message box (info or error). */
export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status", text });
}

/**
 * A table. columns: [{label, value: row => string|number|Node, num?: bool, key?: string,
 * clip?: bool (one line, cut with an ellipsis; the full text in the tooltip)}].
 * Options: onRow(row) makes rows clickable (and focusable), empty: text when no rows.
 */
export function table(columns, rows, { onRow, empty = "Nothing to show.", testid } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : "", text: c.label })));
  const body = rows.map((row) => {
    const tr = h("tr", {}, columns.map((c) => {
      const value = c.value(row);
      const text = value instanceof Node ? value : value === null || value === undefined ? "—" : String(value);
      return h("td", {
        class: c.num ? "num" : c.clip ? "clip" : "",
        "data-col": c.key || null,
        title: c.clip && typeof text === "string" ? text : null,
      }, text);
    }));
    if (onRow) {
      tr.tabIndex = 0;
      tr.classList.add("clickable");
      tr.addEventListener("click", () => onRow(row, tr));
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") onRow(row, tr); });
    }
    return tr;
  });
  if (!rows.length) body.push(h("tr", {}, h("td", { colspan: columns.length, class: "empty", text: empty })));
  return h("div", { class: "table-wrap" },
    h("table", { "data-testid": testid || null }, h("thead", {}, head), h("tbody", {}, body)));
}

/** A definition list from [label, value] pairs. */
export function details(pairs, testid) {
  return h("dl", { class: "details", "data-testid": testid || null },
    pairs.map(([label, value]) => [h("dt", { text: label }),
      h("dd", { "data-field": label }, value instanceof Node ? value : value === null || value === undefined || value === "" ? "—" : String(value))]));
}

/** A labelled form field; `input` is the control element. */
export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { text: label }), input, hint ? h("small", { text: hint }) : null);
}

/** A select from [value, label] pairs (or plain values). */
export function select(name, options, value = "") {
  return h("select", { name }, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: v, selected: v === value, text: label });
  }));
}

/** A small status chip. */
export function chip(text, kind) {
  return h("span", { class: `chip ${kind || ""}`, text });
}

/** A button that asks for a second click within 4 seconds before running `action`. */
export function confirmButton(label, confirmLabel, action) {
  let armed = null;
  const button = h("button", { type: "button", class: "danger", text: label });
  button.addEventListener("click", async () => {
    if (!armed) {
      button.textContent = confirmLabel;
      armed = setTimeout(() => { armed = null; button.textContent = label; }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.disabled = true;
    try { await action(); } finally { button.disabled = false; button.textContent = label; }
  });
  return button;
}
