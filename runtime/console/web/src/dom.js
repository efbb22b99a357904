// Building the page: elements from plain data, never from HTML strings (nothing the API returns is
// ever parsed as markup), and the few formats every screen shares.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** An HTML element: `h("button", {type: "button", onClick}, "Save")`. Strings become text nodes. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, for the charts. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

let ids = 0;
/** A fresh id for tying a label to its input. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: the label, the control and an optional hint tied to it. */
export function field(label, control, hint) {
  control.id ||= uid("field");
  const hintId = hint ? uid("hint") : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

/** A select with its options, given as [value, text] pairs. */
export function select(options, attrs) {
  return h("select", attrs, options.map(([value, text]) => h("option", { value }, text)));
}

/** A place for a screen's messages: errors are alerts, the rest are polite announcements. */
export function notice() {
  const box = h("div", { class: "notice", role: "status", "aria-live": "polite" });
  return {
    element: box,
    ok(message) {
      box.className = "notice ok";
      box.setAttribute("role", "status");
      box.textContent = message;
    },
    error(message) {
      box.className = "notice error";
      box.setAttribute("role", "alert");
      box.textContent = message;
    },
    clear() {
      box.className = "notice";
      box.textContent = "";
    },
  };
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "never";
}

export function number(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

export function micros(us) {
  if (us === null || us === undefined) return "–";
  if (us < 1000) return `${us} µs`;
  return `${(us / 1000).toLocaleString("en-US", { maximumFractionDigits: us >= 100000 ? 0 : 1 })} ms`;
}

export function bytes(n) {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function percent(part, whole) {
  const share = whole ? (100 * part) / whole : 0;
  return share > 0 && share < 1 ? "<1%" : `${Math.round(share)}%`;
}

/** A JSON value, indented, for commands and events. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/**
 * Tabs as the ARIA pattern has them: arrow keys, Home and End move between tabs; Tab goes into the panel.
 * `tabs` are `{id, title, render(panel)}`; a panel is rendered when first shown. Returns the element
 * and `show(id)`.
 */
export function tabs(label, items) {
  const rendered = new Set();
  const buttons = [];
  const panels = [];
  const list = h("div", { role: "tablist", "aria-label": label, class: "tabs" });
  function show(id, focus = false) {
    items.forEach((item, i) => {
      const selected = item.id === id;
      buttons[i].setAttribute("aria-selected", String(selected));
      buttons[i].tabIndex = selected ? 0 : -1;
      panels[i].hidden = !selected;
      if (selected && !rendered.has(id)) {
        rendered.add(id);
        item.render(panels[i]);
      }
      if (selected && focus) buttons[i].focus();
    });
  }
  items.forEach((item, i) => {
    const tabId = uid(`tab-${item.id}`);
    const panelId = uid(`panel-${item.id}`);
    buttons.push(h("button", {
      type: "button", role: "tab", id: tabId, "aria-controls": panelId, dataset: { tab: item.id },
      onClick: () => show(item.id),
      onKeydown(event) {
        const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: items.length - 1 };
        if (!(event.key in moves)) return;
        event.preventDefault();
        show(items[(moves[event.key] + items.length) % items.length].id, true);
      },
    }, item.title));
    panels.push(h("div", { role: "tabpanel", id: panelId, "aria-labelledby": tabId, tabindex: "0", class: "tabpanel" }));
  });
  list.append(...buttons);
  show(items[0].id);
  return { element: h("div", { class: "tabbed" }, list, panels), show };
}

/** Replace an element's children; nulls and nested lists are allowed, as in `h`. */
export function fill(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** "1 run", "3 runs". */
export function plural(n, word) {
  return `${number(n)} ${word}${n === 1 ? "" : "s"}`;
}
