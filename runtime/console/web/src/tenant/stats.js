// The statistics panel: the action's run time (p50, p99) over time and the share of each outcome,
// computed by the API from the execution records.

import { call } from "../api.js";
import { field, fill, h, micros, notice, number, plural, select } from "../dom.js";
import { latencyChart, latencyLegend, outcomeShare, statsTable } from "../charts.js";

const PERIODS = [["3600", "Last hour"], ["86400", "Last 24 hours"], ["604800", "Last 7 days"]];
const KINDS = [["", "Logins and tests"], ["flow", "Logins only"], ["test", "Tests only"]];

export async function statsPanel(panel, ctx) {
  const status = notice();
  const period = select(PERIODS, { name: "period" });
  period.value = "86400";
  const kind = select(KINDS, { name: "kind" });
  const body = h("div", { class: "stats", "aria-live": "polite" });

  async function load() {
    status.clear();
    const to = new Date();
    const from = new Date(to.getTime() - Number(period.value) * 1000);
    try {
      const stats = await call("GET", `/actions/actions/${ctx.action.id}/stats`,
        { query: { from: from.toISOString(), to: to.toISOString(), kind: kind.value } });
      const errors = Object.entries(stats.errors);
      fill(body,
        h("p", { class: "figures" }, `${plural(stats.runs, "run")} · p50 ${micros(stats.p50_us)} · p99 ${micros(stats.p99_us)}`),
        latencyChart(stats),
        latencyLegend(),
        h("h3", {}, "Outcomes"),
        outcomeShare(stats.outcomes),
        errors.length ? [h("h3", {}, "Failures by class"),
          h("ul", {}, errors.map(([name, count]) => h("li", {}, `${name}: ${number(count)}`)))] : null,
        stats.buckets.length ? h("details", {}, h("summary", {}, "The figures as a table"), statsTable(stats)) : null);
    } catch (error) {
      status.error(error.message);
    }
  }

  period.addEventListener("change", load);
  kind.addEventListener("change", load);
  panel.append(
    h("h2", {}, "Statistics"),
    h("div", { class: "row" }, field("Period", period), field("Runs", kind),
      h("button", { type: "button", class: "align-end", onClick: load }, "Refresh")),
    status.element,
    body);
  await load();
}
