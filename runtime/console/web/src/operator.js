// The operator's view: tenants; for each, its usage, its limits (the API refuses values past the
// platform's maximums, and says so) and its API keys.

import { call } from "./api.js";
import { field, h, notice, number, select, when } from "./dom.js";

export async function tenantsScreen(main) {
  const { tenants } = await call("GET", "/tenants");
  const status = notice();
  const name = h("input", { type: "text", name: "tenant-name", required: true, maxlength: 100, autocomplete: "off" });
  const made = h("div", {});
  main.append(
    h("h1", {}, "Tenants"),
    tenants.length ? h("table", {},
      h("caption", {}, `${tenants.length} tenant${tenants.length === 1 ? "" : "s"}`),
      h("thead", {}, h("tr", {}, ["Name", "Limits changed", "Created"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, tenants.map((t) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/tenants/${t.id}` }, t.name)),
        h("td", {}, Object.keys(t.limit_overrides).join(", ") || "none"),
        h("td", {}, when(t.created_at))))))
      : h("p", { class: "empty" }, "No tenants yet."),
    h("form", {
      class: "card", "aria-labelledby": "new-tenant-title",
      async onSubmit(event) {
        event.preventDefault();
        status.clear();
        try {
          const tenant = await call("POST", "/tenants", { body: { name: name.value } });
          made.replaceChildren(shownOnce(`API key of ${tenant.name}`, tenant.api_key.key),
            h("p", {}, h("a", { href: `#/tenants/${tenant.id}` }, `Open ${tenant.name}`)));
          status.ok(`Tenant ${tenant.name} created.`);
          name.value = "";
        } catch (error) {
          status.error(error.message);
        }
      },
    },
    h("h2", { id: "new-tenant-title" }, "New tenant"),
    field("Tenant name", name, "Its hosted login will be at /t/<name>/."),
    h("button", { type: "submit", class: "primary" }, "Create tenant"),
    status.element, made));
}

/** A new key: shown here once, selectable, never again. */
function shownOnce(label, key) {
  const input = h("input", { type: "text", readonly: true, value: key, class: "code-text", spellcheck: "false" });
  input.addEventListener("focus", () => input.select());
  return h("div", { class: "shown-once" }, field(label, input, "Shown once: copy it now. The server keeps only its hash."));
}

const PERIODS = [["86400", "Last 24 hours"], ["604800", "Last 7 days"], ["2592000", "Last 30 days"]];

function usageSection(tenantId) {
  const status = notice();
  const period = select(PERIODS, { name: "usage-period" });
  const figures = h("dl", { class: "figures-list" });
  async function load() {
    status.clear();
    const to = new Date();
    const from = new Date(to.getTime() - Number(period.value) * 1000);
    try {
      const usage = await call("GET", `/tenants/${tenantId}/usage`, { query: { from: from.toISOString(), to: to.toISOString() } });
      const item = (term, value, key) => [h("dt", {}, term), h("dd", { dataset: { figure: key } }, value)];
      figures.replaceChildren(...[
        item("Executions", number(usage.executions), "executions"),
        item("Errors (failed executions)", number(usage.errors), "errors"),
        item("Logins", number(usage.by_kind.flow ?? 0), "logins"),
        item("Tests", number(usage.by_kind.test ?? 0), "tests"),
        item("Action runs", number(usage.action_runs), "action_runs"),
        item("Fuel used (instructions)", number(usage.fuel_used), "fuel_used"),
      ].flat());
    } catch (error) {
      status.error(error.message);
    }
  }
  period.addEventListener("change", load);
  return {
    element: h("section", { "aria-labelledby": "usage-title", class: "card" },
      h("h2", { id: "usage-title" }, "Usage"), field("Period", period), status.element, figures),
    load,
  };
}

function limitsSection(tenant, platform, onSaved) {
  const status = notice();
  const inputs = new Map();
  const rows = Object.keys(platform.defaults).map((name) => {
    const input = h("input", { type: "number", name, min: 1, step: 1, inputmode: "numeric", value: tenant.limits[name] });
    inputs.set(name, input);
    const set = name in tenant.limit_overrides ? "Set for this tenant (empty restores the default). " : "";
    return field(name, input, `${set}Default ${number(platform.defaults[name])}; at most ${number(platform.maximums[name])}.`);
  });
  return h("form", {
    class: "card limits", "aria-labelledby": "limits-title", novalidate: true,
    async onSubmit(event) {
      event.preventDefault();
      status.clear();
      const limits = {};
      for (const [name, input] of inputs) {
        if (input.value === "") {
          if (name in tenant.limit_overrides) limits[name] = null;
        } else if (Number(input.value) !== tenant.limits[name]) {
          limits[name] = Number(input.value);
        }
      }
      if (!Object.keys(limits).length) {
        status.ok("Nothing changed.");
        return;
      }
      try {
        const updated = await call("PATCH", `/tenants/${tenant.id}`, { body: { limits } });
        onSaved(updated, `Limits saved: ${Object.keys(limits).join(", ")}.`);
      } catch (error) {
        status.error(`Not saved: ${error.message}`);
      }
    },
  },
  h("div", { class: "title-row" }, h("h2", { id: "limits-title" }, "Limits"), h("button", { type: "submit", class: "primary" }, "Save limits")),
  h("p", { class: "hint" }, "Per execution and per tenant; the platform's maximums bound them."),
  status.element,
  h("div", { class: "grid" }, rows));
}

function keysSection(tenantId) {
  const status = notice();
  const list = h("div", {});
  const made = h("div", {});
  async function load() {
    const { keys } = await call("GET", `/tenants/${tenantId}/keys`);
    list.replaceChildren(h("table", {},
      h("caption", {}, "API keys (their text is never shown again)"),
      h("thead", {}, h("tr", {}, ["Prefix", "Created", "Revoked", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, keys.map((k) => h("tr", { dataset: { key: k.prefix } },
        h("th", { scope: "row" }, h("code", {}, `${k.prefix}…`)),
        h("td", {}, when(k.created_at)),
        h("td", {}, k.revoked_at ? when(k.revoked_at) : "no"),
        h("td", {}, k.revoked_at ? null : revokeButton(k)))))));
  }
  function revokeButton(key) {
    const cell = h("span", {});
    const ask = h("button", { type: "button", "aria-label": `Revoke the key ${key.prefix}` }, "Revoke");
    ask.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "danger" }, `Yes, revoke ${key.prefix}`);
      const no = h("button", { type: "button" }, "Keep it");
      yes.addEventListener("click", async () => {
        try {
          await call("DELETE", `/tenants/${tenantId}/keys/${key.id}`);
          made.replaceChildren();
          status.ok(`Key ${key.prefix} revoked: it stops working within 5 seconds on every server.`);
          await load();
        } catch (error) {
          status.error(error.message);
        }
      });
      no.addEventListener("click", () => {
        cell.replaceChildren(ask);
        ask.focus();
      });
      cell.replaceChildren(yes, " ", no);
      no.focus();
    });
    cell.append(ask);
    return cell;
  }
  return {
    element: h("section", { class: "card", "aria-labelledby": "keys-title" },
      h("h2", { id: "keys-title" }, "API keys"),
      list,
      h("button", {
        type: "button",
        async onClick() {
          status.clear();
          try {
            const key = await call("POST", `/tenants/${tenantId}/keys`, { body: {} });
            made.replaceChildren(shownOnce("New API key", key.key));
            await load();
          } catch (error) {
            status.error(error.message);
          }
        },
      }, "Create a key"),
      made, status.element),
    load,
  };
}

export async function tenantScreen(main, who, id) {
  const [tenant, platform] = await Promise.all([call("GET", `/tenants/${id}`), call("GET", "/limits")]);
  const usage = usageSection(id);
  const keys = keysSection(id);
  const saved = notice();
  let limits = limitsSection(tenant, platform, function replace(updated, message) {
    const next = limitsSection(updated, platform, replace);
    limits.replaceWith(next);
    limits = next;
    saved.ok(message);
  });
  main.classList.add("wide");
  main.append(
    h("h1", {}, tenant.name),
    h("p", { class: "summary" }, `Created ${when(tenant.created_at)} · hosted login at /t/${tenant.name}/ · `,
      h("a", { href: "#/tenants" }, "All tenants")),
    saved.element,
    h("div", { class: "columns" }, h("div", {}, usage.element, keys.element), limits));
  await Promise.all([usage.load(), keys.load()]);
}
