// The version history: every deployed version, newest first, with rollback (the API deploys a copy of
// the old version, with its secrets, as a new version) and a line diff between any two versions or the
// draft in the editor.

import { structuredPatch } from "diff";
import { call } from "../api.js";
import { field, h, notice, select, when } from "../dom.js";

const DRAFT = "draft";

function diffView(before, after, beforeName, afterName) {
  const patch = structuredPatch(beforeName, afterName, before, after, "", "", { context: 3 });
  if (!patch.hunks.length) return h("p", { class: "empty" }, `No difference between ${beforeName} and ${afterName}.`);
  let added = 0;
  let removed = 0;
  const lines = [];
  for (const hunk of patch.hunks) {
    lines.push(h("span", { class: "hunk" }, `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@\n`));
    for (const line of hunk.lines) {
      const kind = { "+": "add", "-": "del" }[line[0]] ?? "same";
      if (kind === "add") added += 1;
      if (kind === "del") removed += 1;
      lines.push(h("span", { class: kind }, `${line}\n`));
    }
  }
  return h("figure", { class: "diff" },
    h("figcaption", {}, `${beforeName} → ${afterName}: ${added} line${added === 1 ? "" : "s"} added, ${removed} removed`),
    h("pre", {}, lines));
}

export async function versionsPanel(panel, ctx) {
  const status = notice();
  const list = h("div", {});
  const before = select([], { name: "diff-from" });
  const after = select([], { name: "diff-to" });
  const diff = h("div", { "aria-live": "polite" });
  let versions = [];

  function code(choice) {
    return choice === DRAFT ? ctx.editor().code : versions.find((v) => v.id === choice).code;
  }
  function label(choice) {
    return choice === DRAFT ? "the draft" : `version ${versions.find((v) => v.id === choice).number}`;
  }
  function showDiff() {
    if (!before.value || !after.value) {
      diff.replaceChildren();
      return;
    }
    diff.replaceChildren(diffView(code(before.value), code(after.value), label(before.value), label(after.value)));
  }

  async function rollback(version) {
    status.clear();
    try {
      const made = await call("POST", `/actions/actions/${ctx.action.id}/versions/${version.id}/deploy`);
      await ctx.reload();
      status.ok(`Rolled back: version ${made.number}, a copy of version ${version.number}, is deployed.`);
    } catch (error) {
      status.error(`Not rolled back: ${error.message}`);
    }
  }

  async function load() {
    ({ versions } = await call("GET", `/actions/actions/${ctx.action.id}/versions`));
    const deployed = ctx.action.deployed_version?.id;
    const numberOf = (id) => versions.find((v) => v.id === id)?.number;
    list.replaceChildren(versions.length ? h("ol", { class: "versions", reversed: true }, versions.map((v) => h("li", { value: v.number, dataset: { version: v.number } },
      h("span", { class: "version-name" }, `Version ${v.number}`),
      v.id === deployed ? h("span", { class: "badge ok" }, "deployed") : null,
      h("span", { class: "meta" }, ` ${when(v.created_at)}`,
        v.rolled_back_from ? ` · a copy of version ${numberOf(v.rolled_back_from) ?? "?"}` : ""),
      v.id === deployed ? null : h("button", { type: "button", onClick: () => rollback(v) }, `Roll back to version ${v.number}`))))
      : h("p", { class: "empty" }, "Not deployed yet: Deploy makes version 1."));
    const choices = [...versions.map((v) => [v.id, `Version ${v.number}`]), [DRAFT, "The draft in the editor"]];
    for (const [box, fallback] of [[before, deployed ?? versions[0]?.id], [after, DRAFT]]) {
      const current = box.value || fallback;
      box.replaceChildren(...choices.map(([value, text]) => h("option", { value }, text)));
      box.value = choices.some(([value]) => value === current) ? current : DRAFT;
    }
    showDiff();
  }

  before.addEventListener("change", showDiff);
  after.addEventListener("change", showDiff);
  ctx.onChange(() => load().catch((error) => status.error(error.message)));
  panel.append(
    h("h2", {}, "Versions"),
    h("p", { class: "hint" }, "Each deploy makes an immutable version. Rolling back deploys a copy of the old one, with its secrets."),
    status.element,
    list,
    h("h3", {}, "Compare"),
    h("div", { class: "row" }, field("From version", before), field("To version", after),
      h("button", { type: "button", class: "align-end", onClick: showDiff }, "Show the difference")),
    diff);
  await load();
}
