// Charts through uPlot (vendored, loaded by index.html as a classic script): daily series over
// time and bars over named groups. Labels reach the page through uPlot's textContent or canvas.

const uPlot = globalThis.uPlot;
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];
const HEIGHT = 220;
const HALF_DAY = 43200;

function width(el) {
  return Math.max(320, Math.min(el.clientWidth || 560, 900) - 8);
}

function bars() {
  return uPlot.paths.bars({ size: [0.7, 48] });
}

/**
 * Series over UTC days. opts: {title, days: [unix seconds], series: [{label, values, bars?}],
 * format: value => text (axis and legend)}.
 */
export function timeChart(el, { title, days, series, format = (v) => String(v) }) {
  const frame = document.createElement("div");
  frame.className = "chart";
  el.append(frame);
  const options = {
    title,
    width: width(el),
    height: HEIGHT,
    scales: {
      // Bars are centred on their day: half a day of room at each end keeps the outer ones whole.
      x: { time: true, range: (u, min, max) => (series.some((s) => s.bars) ? [min - HALF_DAY, max + HALF_DAY] : [min, max]) },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {},
      { values: (u, splits) => splits.map((v) => format(v)), size: 84 },
    ],
    series: [
      { label: "day", value: (u, v) => (v === null ? "—" : new Date(v * 1000).toISOString().slice(0, 10)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        fill: s.bars ? `${COLORS[i % COLORS.length]}99` : undefined,
        width: s.bars ? 1 : 2,
        paths: s.bars ? bars() : undefined,
        points: { show: !s.bars },
        value: (u, v) => (v === null ? "—" : format(v)),
      })),
    ],
  };
  return new uPlot(options, [days, ...series.map((s) => s.values)], frame);
}

/** Bars over named groups: {title, labels: [text], values: [number], format}. */
export function barChart(el, { title, labels, values, label = "value", format = (v) => String(v) }) {
  const frame = document.createElement("div");
  frame.className = "chart";
  el.append(frame);
  const short = (text) => (text.length > 16 ? `${text.slice(0, 15)}…` : text);
  const xs = labels.map((_, i) => i);
  const options = {
    title,
    width: width(el),
    height: HEIGHT + 40,
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        splits: () => xs,
        values: (u, splits) => splits.map((i) => short(labels[i] ?? "")),
        rotate: labels.length > 6 ? -35 : 0,
        size: labels.length > 6 ? 80 : 40,
        gap: 4,
      },
      { values: (u, splits) => splits.map((v) => format(v)), size: 84 },
    ],
    series: [
      { label: "group", value: (u, i) => (i === null ? "—" : labels[i] ?? "") },
      {
        label,
        stroke: COLORS[0],
        fill: `${COLORS[0]}99`,
        paths: bars(),
        points: { show: false },
        value: (u, v) => (v === null ? "—" : format(v)),
      },
    ],
  };
  return new uPlot(options, [xs, values], frame);
}
