// The post-login flow: the bound actions in the order logins run them, reordered with buttons (or
// Alt+Up / Alt+Down on an item) and saved in one request; only deployed actions can be bound.

import { call } from "../api.js";
import { field, h, notice } from "../dom.js";

const TRIGGER = "post-login";

export async function flowScreen(main) {
  const [{ bindings }, { actions }] = await Promise.all([
    call("GET", `/actions/triggers/${TRIGGER}/bindings`),
    call("GET", "/actions/actions", { query: { triggerId: TRIGGER, deployed: "true", per_page: 100 } }),
  ]);
  let order = bindings.map((b) => ({ id: b.action.id, name: b.action.name }));
  let savedOrder = JSON.stringify(order.map((a) => a.id));
  const status = notice();
  const list = h("ol", { class: "flow", "aria-label": "Actions in the flow, in order" });
  const empty = h("p", { class: "empty" }, "No actions: logins go through unchanged.");
  const deployed = (id) => actions.find((a) => a.id === id)?.deployed_version?.number;
  const adding = h("select", { name: "add" });
  const addButton = h("button", { type: "button", onClick: add }, "Add to the flow");
  const dirty = h("span", { class: "badge warn", hidden: true }, "unsaved changes");

  function move(index, by, focusClass) {
    const target = index + by;
    if (target < 0 || target >= order.length) return;
    [order[index], order[target]] = [order[target], order[index]];
    render();
    list.children[target]?.querySelector(`.${focusClass}`)?.focus();
    status.ok(`${order[target].name} is now number ${target + 1}.`);
  }

  function render() {
    list.replaceChildren(...order.map((action, i) => h("li", {
      dataset: { action: action.name },
      onKeydown(event) {
        if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
          event.preventDefault();
          move(i, event.key === "ArrowUp" ? -1 : 1, event.key === "ArrowUp" ? "up" : "down");
        }
      },
    },
    h("span", { class: "flow-name" }, action.name),
    deployed(action.id) ? h("span", { class: "meta" }, ` · runs version ${deployed(action.id)}`) : null,
    h("span", { class: "flow-buttons" },
      h("button", { type: "button", class: "up", disabled: i === 0, "aria-label": `Move ${action.name} up`, onClick: () => move(i, -1, "up") }, "↑ Up"),
      h("button", { type: "button", class: "down", disabled: i === order.length - 1, "aria-label": `Move ${action.name} down`, onClick: () => move(i, 1, "down") }, "↓ Down"),
      h("button", {
        type: "button", "aria-label": `Remove ${action.name} from the flow`,
        onClick: () => {
          order = order.filter((_, j) => j !== i);
          render();
          status.ok(`${action.name} taken out of the flow (not saved yet).`);
        },
      }, "Remove")))));
    list.hidden = !order.length;
    empty.hidden = Boolean(order.length);
    const free = actions.filter((a) => !order.some((o) => o.id === a.id));
    adding.replaceChildren(...(free.length ? free.map((a) => h("option", { value: a.id }, a.name))
      : [h("option", { value: "" }, "Every deployed action is in the flow")]));
    adding.disabled = addButton.disabled = !free.length;
    dirty.hidden = JSON.stringify(order.map((a) => a.id)) === savedOrder;
  }

  function add() {
    const action = actions.find((a) => a.id === adding.value);
    if (!action) return;
    order.push({ id: action.id, name: action.name });
    render();
    status.ok(`${action.name} added at the end (not saved yet).`);
  }

  async function save() {
    status.clear();
    try {
      const saved = await call("PATCH", `/actions/triggers/${TRIGGER}/bindings`, {
        body: { bindings: order.map((a) => ({ ref: { type: "action_id", value: a.id } })) },
      });
      order = saved.bindings.map((b) => ({ id: b.action.id, name: b.action.name }));
      savedOrder = JSON.stringify(order.map((a) => a.id));
      render();
      status.ok(`Flow saved: ${order.length ? order.map((a) => a.name).join(" → ") : "no actions"}. The next logins run it.`);
    } catch (error) {
      status.error(`Not saved: ${error.message}`);
    }
  }

  main.append(
    h("div", { class: "title-row" }, h("h1", {}, "Post-login flow"), dirty),
    h("p", { class: "hint" }, "Logins run these actions in this order, each the version deployed when the login starts. Move an item with its buttons or Alt+Up and Alt+Down."),
    list,
    empty,
    h("div", { class: "row narrow" }, field("Deployed action to add", adding), h("div", { class: "align-end" }, addButton)),
    h("div", { class: "toolbar" }, h("button", { type: "button", class: "primary", onClick: save }, "Save flow")),
    status.element);
  render();
}
