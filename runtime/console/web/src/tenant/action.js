// One action: its draft in the editor (save, deploy), and panels to test it, set its secrets, browse
// and roll back its versions, and see how it runs.

import { call } from "../api.js";
import { h, notice, tabs } from "../dom.js";
import { createEditor } from "../editor.js";
import { secretsPanel } from "./secrets.js";
import { statsPanel } from "./stats.js";
import { testPanel } from "./test.js";
import { versionsPanel } from "./versions.js";

// Edits not yet saved, by action id: leaving the screen and coming back keeps them (for this tab's life).
const unsaved = new Map();

export async function actionScreen(main, who, id) {
  let action = await call("GET", `/actions/actions/${id}`);
  const status = notice();
  const title = h("h1", {}, action.name);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const dirtyNote = h("span", { class: "badge warn", hidden: true }, "unsaved changes");
  const holder = h("div", { class: "editor" });
  let editor = null;
  let saved = action.code;
  const listeners = new Set();

  function describe() {
    const deployed = action.deployed_version ? `version ${action.deployed_version.number} deployed` : "not deployed yet";
    const changes = action.all_changes_deployed ? "no changes since" : "the draft has changes not deployed";
    summary.textContent = `${action.supported_triggers.map((t) => t.id).join(", ")} · ${action.status} · ${deployed}`
      + `${action.deployed_version ? ` · ${changes}` : ""}`;
  }

  function markDirty() {
    dirtyNote.hidden = editor.code === saved;
  }

  const ctx = {
    get action() {
      return action;
    },
    editor: () => editor,
    /** Fetch the action again (after a change a panel made) and tell the other panels. */
    async reload() {
      action = await call("GET", `/actions/actions/${id}`);
      describe();
      for (const listener of listeners) listener(action);
    },
    onChange(listener) {
      listeners.add(listener);
    },
    /** Save the editor's code as the draft when it changed; false (with the error shown) when refused. */
    async saveDraft() {
      if (editor.code === saved) return true;
      const code = editor.code;
      try {
        action = await call("PATCH", `/actions/actions/${id}`, { body: { code } });
      } catch (error) {
        if (error.body.line) {
          editor.markError({ line: error.body.line, column: error.body.column, message: error.message });
          status.error(`Not saved: line ${error.body.line}, column ${error.body.column}: ${error.message}`);
        } else {
          status.error(`Not saved: ${error.message}`);
        }
        return false;
      }
      saved = code;
      unsaved.delete(id);
      editor.clearErrors();
      markDirty();
      describe();
      for (const listener of listeners) listener(action);
      return true;
    },
  };

  async function save() {
    status.clear();
    const had = editor.code !== saved;
    if (await ctx.saveDraft()) status.ok(had ? "Draft saved." : "Nothing to save: the draft is as shown.");
  }

  async function deploy() {
    status.clear();
    if (!(await ctx.saveDraft())) return;
    try {
      const version = await call("POST", `/actions/actions/${id}/deploy`);
      await ctx.reload();
      status.ok(`Deployed as version ${version.number}: logins run it now.`);
    } catch (error) {
      status.error(`Not deployed: ${error.message}`);
    }
  }

  const panels = tabs("Action tools", [
    { id: "test", title: "Test", render: (panel) => testPanel(panel, ctx) },
    { id: "secrets", title: "Secrets", render: (panel) => secretsPanel(panel, ctx) },
    { id: "versions", title: "Versions", render: (panel) => versionsPanel(panel, ctx) },
    { id: "stats", title: "Statistics", render: (panel) => statsPanel(panel, ctx) },
  ]);
  main.classList.add("wide");
  main.append(
    h("div", { class: "title-row" }, title, dirtyNote),
    summary,
    h("div", { class: "workbench" },
      h("section", { class: "code", "aria-label": "Code" },
        h("div", { class: "toolbar" },
          h("button", { type: "button", onClick: save, title: "Ctrl+S" }, "Save draft"),
          h("button", { type: "button", class: "primary", onClick: deploy }, "Deploy"),
          h("a", { class: "button", href: "#/actions" }, "All actions")),
        status.element,
        holder),
      h("section", { class: "side", "aria-label": "Action tools" }, panels.element)));
  describe();
  editor = createEditor(holder, { code: unsaved.get(id) ?? action.code, label: `Code of ${action.name}`, onSave: save, onChange: markDirty });
  markDirty();
  const warn = (event) => {
    if (editor.code !== saved) event.preventDefault();
  };
  window.addEventListener("beforeunload", warn);
  return () => {
    if (editor.code !== saved) unsaved.set(id, editor.code);
    window.removeEventListener("beforeunload", warn);
    editor.destroy();
  };
}
