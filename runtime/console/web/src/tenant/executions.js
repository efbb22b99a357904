// The execution log: records filtered by action, status and time, each opened to what its actions did;
// and a live tail of the runs as they are recorded (the API's server-sent-events stream).

import { ApiError, call, stream } from "../api.js";
import { field, h, notice, number, select, when } from "../dom.js";
import { renderResult } from "./test.js";

const PER_PAGE = 20;
const STATUSES = [["", "Any status"], ["completed", "completed"], ["denied", "denied"], ["failed", "failed"], ["suspended", "suspended"]];
const MOST_LIVE = 200;

function kindText(kind) {
  return kind === "flow" ? "login" : kind;
}

function iso(local) {
  return local ? new Date(local).toISOString() : undefined;
}

async function details(id) {
  const record = await call("GET", `/actions/executions/${id}`);
  return h("div", { class: "record" }, record.results.map((run, i) => h("section", { "aria-label": `Run ${i + 1}: ${run.action_name}` },
    h("h3", {}, `${i + 1}. ${run.action_name} · ${run.handler}`,
      run.version_id ? "" : " · the draft (test)"),
    run.commands ? renderResult({ ...run, logs: run.logs ?? [] }).flat()
      : h("p", { class: "error-text" }, `${run.error?.class}: ${run.error?.message}`))));
}

function liveTail(onRun) {
  const button = h("button", { type: "button", "aria-pressed": "false" }, "Start the live tail");
  const state = h("p", { class: "hint", "aria-live": "polite" }, "Off: start it to see runs as they are recorded.");
  const entries = h("ol", { class: "live", "aria-label": "Runs as they are recorded, newest first" });
  let controller = null;

  function add(run) {
    entries.prepend(h("li", { dataset: { execution: run.execution_id } },
      h("div", { class: "live-head" },
        h("time", { datetime: run.at }, new Date(run.at ?? Date.now()).toLocaleTimeString()),
        h("strong", {}, run.action_name), ` ${run.handler} · ${kindText(run.kind)} `,
        h("span", { class: `badge status-${run.status}` }, run.status),
        run.error ? h("span", { class: "error-text" }, ` ${run.error.class}: ${run.error.message}`) : null),
      run.logs.length ? h("pre", { class: "logs" }, run.logs.map((l) => `${l.level}: ${l.message}\n`)) : null));
    while (entries.children.length > MOST_LIVE) entries.lastChild.remove();
    onRun();
  }

  function stop(message = "Stopped.") {
    controller?.abort();
    controller = null;
    button.textContent = "Start the live tail";
    button.setAttribute("aria-pressed", "false");
    state.textContent = message;
  }

  async function begin() {
    controller = new AbortController();
    const mine = controller;
    button.textContent = "Stop the live tail";
    button.setAttribute("aria-pressed", "true");
    state.textContent = "Connecting…";
    try {
      const { done } = await stream("/actions/logs/stream", (name, data) => name === "execution" && add(data), mine.signal);
      state.textContent = "Following: runs appear here as they are recorded.";
      state.dataset.following = "true";
      await done;
      if (controller === mine) stop("The server ended the stream; start it again to go on.");
    } catch (error) {
      delete state.dataset.following;
      if (mine.signal.aborted) return;
      stop(error instanceof ApiError ? `Stopped: ${error.message}` : "Stopped: the connection to the server was lost.");
    }
  }

  button.addEventListener("click", () => (controller ? stop() : begin()));
  return {
    element: h("section", { class: "tail", "aria-labelledby": "live-title" },
      h("div", { class: "title-row" }, h("h2", { id: "live-title" }, "Live tail"), button), state, entries),
    stop: () => controller && stop(),
  };
}

export async function executionsScreen(main) {
  const { actions } = await call("GET", "/actions/actions", { query: { per_page: 100 } });
  const status = notice();
  const action = select([["", "All actions"], ...actions.map((a) => [a.id, a.name])], { name: "action" });
  const state = select(STATUSES, { name: "status" });
  const from = h("input", { type: "datetime-local", name: "from" });
  const to = h("input", { type: "datetime-local", name: "to" });
  const table = h("div", {});
  const pager = h("div", { class: "toolbar" });
  let page = 0;

  async function load() {
    status.clear();
    let reply;
    try {
      reply = await call("GET", "/actions/executions", {
        query: { action_id: action.value, status: state.value, from: iso(from.value), to: iso(to.value), page, per_page: PER_PAGE },
      });
    } catch (error) {
      status.error(error.message);
      return;
    }
    const rows = reply.executions.flatMap((e) => {
      const open = h("button", { type: "button", "aria-expanded": "false", "aria-label": `Details of the ${kindText(e.kind)} at ${when(e.created_at)}` }, "Details");
      const more = h("tr", { class: "more", hidden: true }, h("td", { colspan: 5 }));
      open.addEventListener("click", async () => {
        const shown = open.getAttribute("aria-expanded") === "true";
        open.setAttribute("aria-expanded", String(!shown));
        more.hidden = shown;
        if (!shown && !more.firstChild.firstChild) {
          try {
            more.firstChild.append(await details(e.id));
          } catch (error) {
            more.firstChild.append(h("p", { class: "error-text" }, error.message));
          }
        }
      });
      return [h("tr", { dataset: { execution: e.id } },
        h("td", {}, when(e.created_at)),
        h("td", {}, kindText(e.kind)),
        h("td", {}, h("span", { class: `badge status-${e.status}` }, e.status)),
        h("td", {}, e.actions.map((a) => `${a.action_name}: ${a.status}${a.error_class ? ` (${a.error_class})` : ""}`).join(" → ") || "no actions"),
        h("td", {}, open)), more];
    });
    table.replaceChildren(reply.total ? h("table", { class: "executions" },
      h("caption", {}, `${number(reply.total)} record${reply.total === 1 ? "" : "s"}, newest first`),
      h("thead", {}, h("tr", {}, ["Time", "Kind", "Status", "Actions", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))
      : h("p", { class: "empty" }, "No executions match."));
    const first = page * PER_PAGE + 1;
    pager.replaceChildren(
      h("button", { type: "button", disabled: page === 0, onClick: () => { page -= 1; load(); } }, "Newer"),
      h("span", {}, reply.total ? `${first}–${first + reply.executions.length - 1} of ${number(reply.total)}` : ""),
      h("button", { type: "button", disabled: first + reply.executions.length > reply.total, onClick: () => { page += 1; load(); } }, "Older"));
  }

  // While the tail runs, the first page of records follows it (a moment after the last run arrives).
  let refresh = null;
  const tail = liveTail(() => {
    if (page !== 0) return;
    clearTimeout(refresh);
    refresh = setTimeout(load, 400);
  });
  main.classList.add("wide");
  main.append(
    h("h1", {}, "Executions"),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "records-title" },
        h("h2", { id: "records-title" }, "Records"),
        h("form", {
          class: "filters", "aria-label": "Filters",
          onSubmit(event) {
            event.preventDefault();
            page = 0;
            load();
          },
        },
        field("Action", action), field("Status", state), field("From", from), field("To", to),
        h("button", { type: "submit", class: "align-end" }, "Apply filters")),
        status.element, table, pager),
      tail.element));
  await load();
  return () => {
    clearTimeout(refresh);
    tail.stop();
  };
}
