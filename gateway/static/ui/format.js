// Formatting and exact arithmetic for what the API returns: UTC days, counts, and USD amounts
// (decimal text, summed exactly as integer nano-dollars, never as floating point).

const DAY_MS = 86400000;

/** YYYY-MM-DD of a Date, in UTC. */
export const utcDay = (date = new Date()) => date.toISOString().slice(0, 10);

/** The UTC day `n` days after `day` (n may be negative). */
export function addDays(day, n) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Every UTC day from `from` to `to`, both included. */
export function dayList(from, to) {
  const out = [];
  for (let day = from; day <= to; day = addDays(day, 1)) out.push(day);
  return out;
}

/** Unix seconds of 00:00 UTC that day. */
export const dayUnix = (day) => Date.parse(`${day}T00:00:00Z`) / 1000;

/** Monday of the UTC week of `day`. */
export function weekStart(day) {
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(day, -weekday);
}

/** A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC). */
export function fmtTime(unix) {
  if (unix === null || unix === undefined) return null;
  return new Date(unix * 1000).toISOString().slice(0, 19).replace("T", " ");
}

/** A count with thousands separators. */
export function fmtInt(n) {
  return n === null || n === undefined ? null : Number(n).toLocaleString("en-US");
}

/** A ratio as a percentage with one decimal. */
export function fmtPct(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : "0.0%";
}

/** USD decimal text ("0.001500000") as BigInt nano-dollars. */
export function nano(text) {
  if (text === null || text === undefined || text === "") return 0n;
  let s = String(text).trim();
  const negative = s.startsWith("-");
  if (negative) s = s.slice(1);
  const [whole, frac = ""] = s.split(".");
  const value = BigInt(whole || "0") * 1000000000n + BigInt((frac + "000000000").slice(0, 9));
  return negative ? -value : value;
}

/** Nano-dollars as exact decimal text: at least 2 decimals, no trailing zeros past them. */
export function usdText(amount) {
  const negative = amount < 0n;
  const abs = negative ? -amount : amount;
  const whole = abs / 1000000000n;
  let frac = (abs % 1000000000n).toString().padStart(9, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}.${frac}`;
}

/** Nano-dollars (or USD text) for display: `$12.50`. */
export function fmtUSD(amount) {
  if (amount === null || amount === undefined) return null;
  return `$${usdText(typeof amount === "bigint" ? amount : nano(amount))}`;
}

/** A chart's USD value: two decimals, or two significant digits below a cent. */
export function axisUSD(v) {
  if (!v) return "$0";
  return Math.abs(v) >= 0.01 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`;
}

/** Nano-dollars as a float, for charts only. */
export const usdNumber = (amount) => Number(amount) / 1e9;

/** A `datetime-local` input value (taken as UTC) as RFC 3339, or "" when empty. */
export const localToUtc = (value) => (value ? `${value.length === 16 ? `${value}:00` : value}Z` : "");

/** CSV text; cells that a spreadsheet would run as a formula are quoted as text. */
export function toCSV(header, rows) {
  const cell = (value) => {
    let s = value === null || value === undefined ? "" : String(value);
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** Hand `text` to the browser as a file download (made in the page, no request). */
export function download(name, text, type = "text/csv") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
