// The code editor: CodeMirror 6 with JavaScript highlighting, line numbers, and our compiler's syntax
// errors shown as diagnostics at their line and column.

import { javascript } from "@codemirror/lang-javascript";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { basicSetup } from "codemirror";

/** The nonce the page's Content-Security-Policy allows for the styles CodeMirror writes. */
function styleNonce() {
  return document.querySelector('meta[name="tollgate-style-nonce"]')?.content ?? "";
}

/**
 * An editor in `parent`. `onSave` runs on Ctrl+S (Cmd+S); `onChange` after each edit.
 * Tab moves the focus on, as everywhere else on the page (indent with Ctrl+] and Ctrl+[).
 */
export function createEditor(parent, { code, label, onSave, onChange }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: code,
      extensions: [
        basicSetup,
        javascript(),
        lintGutter(),
        EditorView.cspNonce.of(styleNonce()),
        EditorView.contentAttributes.of({ "aria-label": label }),
        keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (onSave?.(), true) }]),
        EditorView.updateListener.of((update) => update.docChanged && onChange?.()),
      ],
    }),
  });
  return {
    view,
    get code() {
      return view.state.doc.toString();
    },
    set code(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    /** Mark an error at its 1-based line and column (the compiler's, or a test run's), to the end of the line. */
    markError({ line, column, message, source = "Tollgate compiler" }) {
      const doc = view.state.doc;
      const at = doc.line(Math.min(Math.max(line ?? 1, 1), doc.lines));
      const from = Math.min(at.from + Math.max((column ?? 1) - 1, 0), at.to);
      const diagnostic = { from, to: at.to, severity: "error", source, message };
      view.dispatch(setDiagnostics(view.state, [diagnostic]), { selection: { anchor: from }, scrollIntoView: true });
    },
    clearErrors() {
      view.dispatch(setDiagnostics(view.state, []));
    },
    destroy() {
      view.destroy();
    },
  };
}
