// The statistics drawn as inline SVG: run time (p50 and p99) over time, and the share of each outcome.
// Both come with a text equivalent: the chart's description and a table.

import { h, micros, number, percent, plural, s, uid } from "./dom.js";

const OUTCOMES = ["completed", "denied", "redirected", "failed"];

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function timeLabel(ms, span) {
  const d = new Date(ms);
  if (span > 2 * 86400000) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return span > 6 * 3600000 ? `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${time}` : time;
}

/** The p50 and p99 lines of `stats` (the API's answer) across its period. */
export function latencyChart(stats) {
  const from = Date.parse(stats.from);
  const to = Date.parse(stats.to);
  const points = stats.buckets.filter((b) => b.p50_us !== null);
  const top = Math.max(1, ...points.map((b) => b.p99_us)) * 1.1;
  const x = (ms) => PAD.left + ((ms - from) / (to - from)) * (WIDTH - PAD.left - PAD.right);
  const y = (us) => HEIGHT - PAD.bottom - (us / top) * (HEIGHT - PAD.top - PAD.bottom);
  const middle = (b) => Date.parse(b.start) + (stats.bucket_seconds * 1000) / 2;
  const titleId = uid("chart-title");
  const descId = uid("chart-desc");
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => s("g", { class: "grid" },
    s("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(top * f), y2: y(top * f) }),
    s("text", { x: PAD.left - 6, y: y(top * f) + 4, "text-anchor": "end" }, micros(Math.round(top * f)))));
  const ticks = [0, 0.5, 1].map((f) => s("text", {
    class: "axis", x: x(from + (to - from) * f), y: HEIGHT - 8, "text-anchor": ["start", "middle", "end"][f * 2],
  }, timeLabel(from + (to - from) * f, to - from)));
  const line = (key, cls) => [
    points.length > 1 ? s("polyline", { class: cls, points: points.map((b) => `${x(middle(b))},${y(b[key])}`).join(" ") }) : null,
    points.map((b) => s("circle", { class: cls, cx: x(middle(b)), cy: y(b[key]), r: 3 },
      s("title", {}, `${new Date(b.start).toLocaleString()}: ${key.replace("_us", "")} ${micros(b[key])}, ${plural(b.runs, "run")}`))),
  ];
  const summary = points.length
    ? `Over the period: ${plural(stats.runs, "run")}, p50 ${micros(stats.p50_us)}, p99 ${micros(stats.p99_us)}; `
      + `${points.length} buckets of ${stats.bucket_seconds / 60} minutes with runs.`
    : "No runs in this period.";
  return s("svg", {
    class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": titleId, "aria-describedby": descId,
  },
  s("title", { id: titleId }, "Run time over time: p50 and p99"),
  s("desc", { id: descId }, summary),
  grid, ticks,
  line("p99_us", "p99"), line("p50_us", "p50"),
  points.length ? null : s("text", { class: "empty", x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle" }, "No runs in this period"));
}

/** The chart's legend. */
export function latencyLegend() {
  return h("ul", { class: "legend" },
    h("li", {}, s("svg", { viewBox: "0 0 20 4", "aria-hidden": "true" }, s("line", { class: "p50", x1: 0, x2: 20, y1: 2, y2: 2 })), " p50 (median)"),
    h("li", {}, s("svg", { viewBox: "0 0 20 4", "aria-hidden": "true" }, s("line", { class: "p99", x1: 0, x2: 20, y1: 2, y2: 2 })), " p99"));
}

/** One bar split by outcome, and a list with each outcome's count and share. */
export function outcomeShare(outcomes) {
  const total = OUTCOMES.reduce((sum, name) => sum + (outcomes[name] ?? 0), 0);
  let offset = 0;
  const bar = s("svg", { class: "share", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true" },
    total ? OUTCOMES.filter((name) => outcomes[name]).map((name) => {
      const width = (100 * outcomes[name]) / total;
      const rect = s("rect", { class: `outcome-${name}`, x: offset, y: 0, width, height: 6 });
      offset += width;
      return rect;
    }) : s("rect", { class: "outcome-none", x: 0, y: 0, width: 100, height: 6 }));
  const list = h("ul", { class: "outcomes", "aria-label": "Share of each outcome" },
    OUTCOMES.map((name) => h("li", { dataset: { outcome: name } },
      h("span", { class: `swatch outcome-${name}`, "aria-hidden": "true" }),
      `${name}: ${number(outcomes[name] ?? 0)} (${percent(outcomes[name] ?? 0, total)})`)));
  return h("div", { class: "outcome-share" }, bar, list);
}

/** The buckets as a table, for reading the figures exactly. */
export function statsTable(stats) {
  return h("table", {},
    h("caption", {}, "Runs per bucket"),
    h("thead", {}, h("tr", {}, ["Start", "Runs", "p50", "p99", ...OUTCOMES].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, stats.buckets.map((b) => h("tr", {},
      h("th", { scope: "row" }, new Date(b.start).toLocaleString()),
      h("td", {}, number(b.runs)), h("td", {}, micros(b.p50_us)), h("td", {}, micros(b.p99_us)),
      OUTCOMES.map((name) => h("td", {}, number(b.outcomes[name])))))));
}
