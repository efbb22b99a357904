// The test panel: run the draft against an event (the trigger's sample to start with) and show what it
// did: commands, console output, error, and its use of each limit in force for the tenant.

import { call } from "../api.js";
import { bytes, field, fill, h, micros, notice, number, percent, pretty, select } from "../dom.js";

function usage(stats, commands) {
  const limits = stats.limits;
  const rows = [
    ["Fuel (instructions)", stats.fuel_used, limits.fuel, number],
    ["Run time", stats.duration_us, limits.wall_ms * 1000, micros],
    ["Memory", stats.memory_peak_bytes, limits.memory_bytes, bytes],
    ["Heap", stats.heap_peak_bytes, limits.memory_bytes, bytes],
    ["Platform calls", stats.host_calls, limits.max_host_calls, number],
    ["Commands", commands, limits.max_commands, number],
  ];
  return h("table", { class: "usage" },
    h("caption", {}, "Use of the tenant's limits"),
    h("thead", {}, h("tr", {}, ["", "Used", "Limit", "Share"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map(([name, used, limit, format]) => h("tr", {},
      h("th", { scope: "row" }, name),
      h("td", {}, format(used)),
      h("td", {}, format(limit)),
      h("td", {}, h("meter", { min: 0, max: limit, value: used, "aria-label": `${name}: ${percent(used, limit)} of the limit` }),
        ` ${percent(used, limit)}`)))));
}

export function renderResult(result) {
  const error = result.error;
  return [
    h("h3", {}, "Result: ", h("span", { class: `badge status-${result.status}` }, result.status)),
    h("h4", {}, `Commands (${result.commands.length})`),
    result.commands.length ? h("ol", { class: "commands" }, result.commands.map((c) => h("li", {}, h("pre", {}, pretty(c)))))
      : h("p", { class: "empty" }, "No commands: the login goes on unchanged."),
    h("h4", {}, "Console output"),
    result.logs.length ? h("pre", { class: "logs" }, result.logs.map((l) => h("span", { class: `log-${l.level}` }, `${l.level}: ${l.message}\n`)))
      : h("p", { class: "empty" }, "None."),
    error ? [h("h4", {}, "Error"), h("p", { class: "error-text" },
      `${error.class}${error.name ? ` (${error.name})` : ""}: ${error.message}`,
      error.line ? ` at line ${error.line}, column ${error.column}` : ""),
    error.stack ? h("pre", { class: "stack" }, error.stack) : null] : null,
    result.stats ? usage(result.stats, result.commands.length) : null,
  ];
}

export async function testPanel(panel, ctx) {
  const trigger = ctx.action.supported_triggers[0].id;
  const status = notice();
  const handler = select([], { name: "handler" });
  const fillHandlers = (action) => {
    const current = handler.value;
    handler.replaceChildren(...action.handlers.map((name) => h("option", { value: name }, name)));
    if (action.handlers.includes(current)) handler.value = current;
  };
  fillHandlers(ctx.action);
  ctx.onChange(fillHandlers);
  const event = h("textarea", { name: "event", rows: 12, wrap: "off", spellcheck: "false", class: "code-text" });
  const output = h("div", { class: "test-result", "aria-live": "polite" });

  async function sample() {
    event.value = pretty((await call("GET", `/actions/triggers/${trigger}/sample-event`)).event);
  }

  async function run(e) {
    e.preventDefault();
    status.clear();
    let payload;
    try {
      payload = JSON.parse(event.value);
    } catch (error) {
      status.error(`The event is not valid JSON: ${error.message}`);
      event.focus();
      return;
    }
    if (!(await ctx.saveDraft())) return;
    const button = e.submitter;
    button.disabled = true;
    try {
      const { payload: result } = await call("POST", `/actions/actions/${ctx.action.id}/test`,
        { body: { payload, handler: handler.value } });
      fill(output, renderResult(result));
      if (result.error?.line) {
        ctx.editor().markError({ line: result.error.line, column: result.error.column, message: result.error.message, source: "Test run" });
      }
      status.ok(`Ran the draft: ${result.status}. Recorded as execution ${result.execution_id}.`);
    } catch (error) {
      status.error(`The test did not run: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  panel.append(h("form", { onSubmit: run, "aria-label": "Test the draft" },
    h("h2", {}, "Test the draft"),
    h("p", { class: "hint" }, "Runs the draft (saved first) with its secrets; the run is recorded but never changes what logins see."),
    field("Handler", handler),
    field("Event (JSON)", event),
    h("div", { class: "toolbar" },
      h("button", { type: "submit", class: "primary" }, "Run test"),
      h("button", { type: "button", onClick: () => sample() }, "Reset the event to the sample")),
    status.element,
    output));
  await sample();
}
