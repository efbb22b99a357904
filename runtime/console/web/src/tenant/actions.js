// The tenant's actions: the list, and a new action written in the editor and created through the API
// (which compiles it at once: a syntax error comes back with its line and column).

import { call } from "../api.js";
import { field, h, notice, select, when } from "../dom.js";
import { createEditor } from "../editor.js";

export const TEMPLATE = `/**
 * Handler that will be called during the execution of a PostLogin flow.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => {
};
`;

export function deployedText(action) {
  return action.deployed_version ? `version ${action.deployed_version.number}` : "not deployed";
}

export async function actionsScreen(main) {
  const { actions, total } = await call("GET", "/actions/actions", { query: { per_page: 100 } });
  const rows = actions.map((a) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/actions/${a.id}` }, a.name)),
    h("td", {}, a.supported_triggers.map((t) => `${t.id} (${t.version})`).join(", ")),
    h("td", {}, a.status),
    h("td", {}, deployedText(a)),
    h("td", {}, a.all_changes_deployed ? "all deployed" : h("span", { class: "badge warn" }, "draft has changes")),
    h("td", {}, when(a.updated_at))));
  main.append(
    h("div", { class: "title-row" }, h("h1", {}, "Actions"), h("a", { class: "button primary", href: "#/actions/new" }, "New action")),
    total ? h("table", { class: "actions" },
      h("caption", {}, `${total} action${total === 1 ? "" : "s"}`),
      h("thead", {}, h("tr", {}, ["Name", "Triggers", "Status", "Deployed", "Draft", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))
      : h("p", { class: "empty" }, "No actions yet. Write one with New action."));
}

export async function newActionScreen(main) {
  const { triggers } = await call("GET", "/actions/triggers");
  const status = notice();
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const trigger = select(triggers.map((t) => [`${t.id}:${t.version}`, `${t.id} (${t.version})`]), { name: "trigger" });
  const holder = h("div", { class: "editor", id: "new-action-code" });
  let editor = null;

  async function create() {
    status.clear();
    const [id, version] = trigger.value.split(":");
    try {
      const made = await call("POST", "/actions/actions", {
        body: { name: name.value, code: editor.code, supported_triggers: [{ id, version }] },
      });
      window.location.hash = `#/actions/${made.id}`;
    } catch (error) {
      if (error.body.line) {
        editor.markError({ line: error.body.line, column: error.body.column, message: error.message });
        status.error(`Line ${error.body.line}, column ${error.body.column}: ${error.message}`);
      } else {
        status.error(error.message);
      }
    }
  }

  const form = h("form", {
    class: "new-action", "aria-labelledby": "new-action-title",
    onSubmit(event) {
      event.preventDefault();
      create();
    },
  },
  h("h1", { id: "new-action-title" }, "New action"),
  h("div", { class: "row" }, field("Name", name), field("Trigger", trigger)),
  h("div", { class: "field" }, h("span", { class: "label", id: "new-action-code-label" }, "Code"), holder),
  h("div", { class: "toolbar" }, h("button", { type: "submit", class: "primary" }, "Create action"),
    h("a", { class: "button", href: "#/actions" }, "Cancel")),
  status.element);
  main.append(form);
  editor = createEditor(holder, { code: TEMPLATE, label: "Code", onSave: create });
  name.focus();
  return () => editor.destroy();
}
