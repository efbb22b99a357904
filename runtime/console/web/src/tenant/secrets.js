// The secrets panel: names and update times only (the API never returns a value); set and remove.
// The API takes the whole set: a name without a value keeps its stored value, a name left out is removed.

import { call } from "../api.js";
import { field, h, notice, when } from "../dom.js";

export function secretsPanel(panel, ctx) {
  const status = notice();
  const list = h("div", {});
  const name = h("input", { type: "text", name: "secret-name", required: true, maxlength: 128, autocomplete: "off", spellcheck: "false" });
  const value = h("input", { type: "password", name: "secret-value", required: true, maxlength: 4096, autocomplete: "new-password" });

  async function change(secrets, done) {
    status.clear();
    try {
      await call("PATCH", `/actions/actions/${ctx.action.id}`, { body: { secrets } });
      await ctx.reload();
      status.ok(`${done} Deploy to use it in logins; tests use the draft's secrets at once.`);
      return true;
    } catch (error) {
      status.error(error.message);
      return false;
    }
  }

  function render(action) {
    const secrets = action.secrets;
    list.replaceChildren(secrets.length ? h("table", {},
      h("caption", {}, "Secrets of the draft"),
      h("thead", {}, h("tr", {}, ["Name", "Updated", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, secrets.map((secret) => h("tr", {},
        h("th", { scope: "row" }, h("code", {}, secret.name)),
        h("td", {}, when(secret.updated_at)),
        h("td", {}, h("button", {
          type: "button", "aria-label": `Remove the secret ${secret.name}`,
          onClick: () => change(secrets.filter((s) => s.name !== secret.name).map((s) => ({ name: s.name })),
            `Removed ${secret.name} from the draft.`),
        }, "Remove"))))))
      : h("p", { class: "empty" }, "No secrets."));
  }

  render(ctx.action);
  ctx.onChange(render);
  panel.append(
    h("h2", {}, "Secrets"),
    h("p", { class: "hint" }, "Actions read them as event.secrets.NAME. Values are encrypted and never shown again."),
    list,
    h("form", {
      "aria-label": "Set a secret",
      async onSubmit(event) {
        event.preventDefault();
        const others = ctx.action.secrets.filter((s) => s.name !== name.value).map((s) => ({ name: s.name }));
        if (await change([...others, { name: name.value, value: value.value }], `Set ${name.value} in the draft.`)) {
          name.value = "";
          value.value = "";
        }
      },
    },
    h("h3", {}, "Set a secret"),
    h("div", { class: "row" }, field("Secret name", name), field("Secret value", value)),
    h("button", { type: "submit" }, "Set secret")),
    status.element);
}
