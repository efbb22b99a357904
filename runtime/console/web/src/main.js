// The console's shell: sign in and out, the header and its navigation, and the screens by address
// (#/actions, #/flow, #/executions for a tenant; #/tenants for the operator).

import "./console.css";
import { call, session } from "./api.js";
import { field, h, notice } from "./dom.js";
import { executionsScreen } from "./tenant/executions.js";
import { flowScreen } from "./tenant/flow.js";
import { actionScreen } from "./tenant/action.js";
import { actionsScreen, newActionScreen } from "./tenant/actions.js";
import { tenantScreen, tenantsScreen } from "./operator.js";

const SCREENS = {
  tenant: [
    [/^#\/actions\/new$/, newActionScreen],
    [/^#\/actions\/([\w-]+)$/, actionScreen],
    [/^#\/actions$/, actionsScreen],
    [/^#\/flow$/, flowScreen],
    [/^#\/executions$/, executionsScreen],
  ],
  operator: [
    [/^#\/tenants\/([\w-]+)$/, tenantScreen],
    [/^#\/tenants$/, tenantsScreen],
  ],
};
const HOME = { tenant: "#/actions", operator: "#/tenants" };
const NAV = {
  tenant: [["#/actions", "Actions"], ["#/flow", "Flow"], ["#/executions", "Executions"]],
  operator: [["#/tenants", "Tenants"]],
};

const app = document.getElementById("app");
let leave = null; // what the current screen does when it is left (stop a live tail...)

/** Whose the key is: a tenant's (with its name) or the operator's. */
async function whoIs(key) {
  const current = await call("GET", "/keys/current", { key });
  return current.kind === "operator" ? { role: "operator", label: "Operator" }
    : { role: "tenant", name: current.tenant_name, label: `Tenant ${current.tenant_name}` };
}

function signInScreen(message) {
  const status = notice();
  const key = h("input", { type: "password", name: "key", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", {
    class: "card sign-in", "aria-labelledby": "sign-in-title",
    async onSubmit(event) {
      event.preventDefault();
      status.clear();
      const text = key.value.trim();
      try {
        const who = await whoIs(text);
        session.save(text);
        start(who);
      } catch (error) {
        status.error(error.message);
        key.focus();
      }
    },
  },
  h("h1", { id: "sign-in-title" }, "Sign in to the Tollgate console"),
  h("p", {}, "Sign in with your tenant's API key to write, test and deploy its actions; the platform operator signs in with the operator key. The key stays in this tab only."),
  field("API key", key),
  h("button", { type: "submit", class: "primary" }, "Sign in"),
  status.element);
  app.replaceChildren(h("main", { id: "main", class: "signed-out" }, form));
  if (message) status.error(message);
  key.focus();
  document.title = "Sign in · Tollgate console";
}

function signOut(message) {
  leave?.();
  leave = null;
  session.clear();
  window.removeEventListener("hashchange", route);
  history.replaceState(null, "", window.location.pathname);
  signInScreen(message);
}

let who = null;

function start(identity) {
  who = identity;
  const nav = h("nav", { "aria-label": "Console" }, h("ul", {}, NAV[who.role].map(([href, text]) => h("li", {}, h("a", { href }, text)))));
  const header = h("header", { class: "top" },
    h("a", { class: "skip", href: "#main", onClick: (e) => { e.preventDefault(); document.getElementById("main").focus(); } }, "Skip to content"),
    h("span", { class: "brand" }, "Tollgate"),
    nav,
    h("span", { class: "who" }, who.label),
    h("button", { type: "button", onClick: () => signOut() }, "Sign out"));
  app.replaceChildren(header, h("main", { id: "main", tabindex: "-1" }));
  window.addEventListener("hashchange", route);
  if (!SCREENS[who.role].some(([pattern]) => pattern.test(window.location.hash))) window.location.hash = HOME[who.role];
  else route();
}

async function route() {
  leave?.();
  leave = null;
  const hash = window.location.hash;
  const found = SCREENS[who.role].map(([pattern, screen]) => [hash.match(pattern), screen]).find(([m]) => m);
  if (!found) {
    window.location.hash = HOME[who.role];
    return;
  }
  const [match, screen] = found;
  for (const link of app.querySelectorAll("nav a")) {
    if (hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = h("main", { id: "main", tabindex: "-1" });
  app.querySelector("main").replaceWith(main);
  try {
    leave = (await screen(main, who, ...match.slice(1))) ?? null;
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { role: "alert", class: "notice error" }, error.message));
  }
  const title = main.querySelector("h1");
  document.title = `${title?.textContent ?? "Tollgate"} · Tollgate console`;
  if (title && !main.contains(document.activeElement)) {
    title.setAttribute("tabindex", "-1");
    title.focus();
  }
}

window.addEventListener("tollgate:unauthorized", (event) => signOut(`Signed out: ${event.detail.message}`));

async function boot() {
  const key = session.key;
  if (!key) {
    signInScreen();
    return;
  }
  try {
    start(await whoIs(key));
  } catch (error) {
    signOut(error.message);
  }
}

boot();
