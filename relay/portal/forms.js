// Small DOM helpers for the account and user screens: labelled inputs, forms that submit with
// Enter, a status line read out by screen readers. Everything is a real <form>/<label>/<button>
// so the screens work with the keyboard alone.

import { messageFor } from "./messages.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== undefined) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

let uid = 0;

/** A label + input pair; returns [wrapper, input]. */
export function field(label, attrs = {}) {
  const id = attrs.id ?? `f${++uid}`;
  const input = el("input", { ...attrs, id });
  return [el("div", { class: "field" }, el("label", { for: id, text: label }), input), input];
}

/** A status line: role=alert for errors, role=status for progress and success. */
export function status() {
  const node = el("p", { class: "form-status", role: "status", "aria-live": "polite" });
  node.hidden = true;
  node.show = (text, kind = "info") => {
    node.textContent = text;
    node.dataset.kind = kind;
    node.setAttribute("role", kind === "error" ? "alert" : "status");
    node.hidden = !text;
  };
  return node;
}

/**
 * A form: its children, a submit button, a status line. ``onSubmit`` returns a success text
 * (or nothing); a throw shows the documented message for the error code in ``context``.
 */
export function form({ title, children, submit, onSubmit, context = "", id }) {
  const line = status();
  const button = el("button", { type: "submit", class: "button", text: submit });
  const node = el(
    "form",
    { class: "card page-card", novalidate: true, id },
    title ? el("h2", { text: title }) : "",
    ...children,
    line,
    button,
  );
  node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    line.show("");
    try {
      const done = await onSubmit();
      if (done) line.show(done, "ok");
    } catch (err) {
      line.show(messageFor(err, context), "error");
    } finally {
      button.disabled = false;
    }
  });
  node.status = line;
  return node;
}

/** Query parameters after "#/route?" in the location hash. */
export function hashParams() {
  const query = location.hash.split("?")[1] ?? "";
  return new URLSearchParams(query);
}
