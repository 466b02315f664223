// Operator announcements (MSG-1, manual 5.7 and 5.8.2): the Messages button in the top bar with
// the unread count and a popup of the newest 10, and the #/messages history page with its
// "Maintenance history" tab.
//
// Routes: #/messages (message history), #/messages?kind=maintenance (maintenance history),
// either with &page=N and &id=N (that message opened). Opening a message marks it read for
// this viewer only; every change fires "rmon:messages-changed" so the badge follows.
// (Named "announcements": messages.js is the table of error messages.)

import { apiJson } from "./api.js";
import { el, hashParams } from "./forms.js";
import { messageFor } from "./messages.js";

const BASE = "/api/v1/messages";
const CHANGED = "rmon:messages-changed";

const KIND_TEXT = {
  firmware_available: "Firmware available",
  maintenance: "Maintenance",
  other: "Notice",
};

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** "Maintenance window: start – end" for a maintenance notice that announces one. */
function windowText(message) {
  if (!message.starts_at && !message.ends_at) return "";
  const [start, end] = [when(message.starts_at) || "?", when(message.ends_at) || "?"];
  return `Maintenance window: ${start} – ${end}`;
}

/** Where "View" goes: maintenance notices open in the maintenance history (manual 5.7 ③). */
function viewHref(message) {
  const kind = message.kind === "maintenance" ? "kind=maintenance&" : "";
  return `#/messages?${kind}id=${message.id}`;
}

async function markRead(message) {
  if (message.read) return;
  await apiJson("POST", `${BASE}/${encodeURIComponent(message.id)}/read`);
  message.read = true;
  window.dispatchEvent(new CustomEvent(CHANGED));
}

function published(message) {
  const at = message.published_at;
  return el("time", { class: "help", datetime: at, text: when(at) });
}

function kindBadge(message) {
  const text = KIND_TEXT[message.kind] ?? message.kind;
  return el("span", { class: `message-kind kind-${message.kind}`, text });
}

// --- the top bar button and popup ----------------------------------------------------------

/** The Messages button: unread badge, popup of the newest 10, Escape and outside click close. */
export class MessagesMenu {
  #button = document.getElementById("messages-button");
  #count = document.getElementById("messages-count");
  #popup = document.getElementById("messages-popup");
  #active = false;
  #token = 0;

  constructor() {
    this.#button.addEventListener("click", () => (this.#popup.hidden ? this.open() : this.close()));
    this.#popup.addEventListener("keydown", (ev) => this.#onKey(ev));
    this.#button.addEventListener("keydown", (ev) => this.#onKey(ev));
    document.addEventListener("click", (ev) => {
      if (!this.#popup.hidden && !ev.target.closest?.(".messages-menu")) this.close(false);
    });
    // The count only: re-drawing the open popup would take the keyboard focus away.
    window.addEventListener(CHANGED, () => this.refresh(false));
  }

  /** Fetch the unread count, and draw the popup's list when ``list`` (default: if open). */
  async refresh(list = !this.#popup.hidden) {
    this.#active = true;
    const token = ++this.#token;
    let summary;
    try {
      summary = await apiJson("GET", `${BASE}/summary`);
    } catch {
      return; // the badge stays as it was; a session error is handled by api.js
    }
    if (token !== this.#token || !this.#active) return;
    this.#showCount(summary.unread);
    if (list && !this.#popup.hidden) this.#render(summary.messages);
    return summary;
  }

  async open() {
    this.#popup.hidden = false;
    this.#button.setAttribute("aria-expanded", "true");
    this.#popup.replaceChildren(el("p", { class: "boot", role: "status", text: "Loading…" }));
    await this.refresh(true);
    this.#popup.querySelector("button, a")?.focus();
  }

  close(returnFocus = true) {
    if (this.#popup.hidden) return;
    this.#popup.hidden = true;
    this.#button.setAttribute("aria-expanded", "false");
    if (returnFocus) this.#button.focus();
  }

  /** Signed out: forget the count and close. */
  reset() {
    this.#active = false;
    this.#token++;
    this.close(false);
    this.#popup.replaceChildren();
    this.#showCount(0);
  }

  #onKey(ev) {
    if (ev.key === "Escape" && !this.#popup.hidden) {
      ev.preventDefault();
      this.close();
    }
  }

  #showCount(unread) {
    this.#count.textContent = String(unread);
    this.#count.hidden = unread === 0;
    this.#button.setAttribute("aria-label", unread ? `Messages, ${unread} unread` : "Messages");
  }

  #render(messages) {
    const items = messages.map((m) => this.#item(m));
    const list = messages.length
      ? el("ul", { class: "messages-list", id: "messages-popup-list" }, ...items)
      : el("p", { class: "empty", text: "There are no messages." });
    const readAll = el("button", {
      type: "button",
      class: "button secondary",
      id: "messages-read-all",
      text: "Mark all as read",
    });
    readAll.addEventListener("click", async () => {
      await apiJson("POST", `${BASE}/read-all`);
      await this.refresh(true);
      this.#popup.querySelector("#messages-read-all")?.focus();
    });
    const toList = el("a", {
      class: "button secondary",
      href: "#/messages",
      id: "messages-to-list",
      text: "To list",
    });
    toList.addEventListener("click", () => this.close(false));
    this.#popup.replaceChildren(
      el("h2", { id: "messages-popup-title", text: "Messages" }),
      list,
      el("div", { class: "messages-actions" }, readAll, toList),
    );
  }

  /** One popup row: the title opens the body in place (and marks it read), "View" goes to it. */
  #item(message) {
    const body = el("div", { class: "message-body" }, el("p", { text: message.body }));
    const windowLine = windowText(message);
    if (windowLine) body.append(el("p", { class: "help", text: windowLine }));
    body.hidden = true;
    const toggle = el("button", {
      type: "button",
      class: "message-title",
      "aria-expanded": "false",
      text: message.title,
    });
    toggle.addEventListener("click", async () => {
      body.hidden = !body.hidden;
      toggle.setAttribute("aria-expanded", String(!body.hidden));
      if (body.hidden) return;
      await markRead(message);
      item.className = "message read";
    });
    const view = el("a", { href: viewHref(message), class: "message-view", text: "View" });
    view.addEventListener("click", () => this.close(false));
    const item = el(
      "li",
      { class: message.read ? "message read" : "message unread" },
      el("div", { class: "message-head" }, kindBadge(message), toggle, view),
      published(message),
      body,
    );
    item.dataset.id = String(message.id);
    return item;
  }
}

// --- the history page ------------------------------------------------------------------------

function tabs(maintenance) {
  const tab = (href, text, current) =>
    el("a", { href, class: "tab", text, "aria-current": current ? "page" : false });
  return el(
    "nav",
    { class: "tabs", "aria-label": "Message lists" },
    tab("#/messages", "Message history", !maintenance),
    tab("#/messages?kind=maintenance", "Maintenance history", maintenance),
  );
}

function pager(data, maintenance) {
  const pages = Math.max(1, Math.ceil(data.total / data.page_size));
  const href = (n) => `#/messages?${maintenance ? "kind=maintenance&" : ""}page=${n}`;
  const nav = el("nav", { class: "pager", "aria-label": "Pages" });
  const link = (n, rel, text) => el("a", { href: href(n), rel, text });
  if (data.page > 1) nav.append(link(data.page - 1, "prev", "← Newer"));
  const where = `Page ${data.page} of ${pages} (${data.total} messages)`;
  nav.append(el("span", { class: "help", text: where }));
  if (data.page < pages) nav.append(link(data.page + 1, "next", "Older →"));
  return nav;
}

/** One history entry: a <details> (keyboard and screen-reader friendly); opening marks read. */
function entry(message, open) {
  const summary = el(
    "summary",
    {},
    kindBadge(message),
    el("span", { class: "message-title", text: message.title }),
    published(message),
  );
  const details = el(
    "details",
    { class: message.read ? "message read" : "message unread", id: `message-${message.id}` },
    summary,
  );
  details.append(el("p", { text: message.body }));
  const windowLine = windowText(message);
  if (windowLine) details.append(el("p", { class: "help", text: windowLine }));
  const status = el("p", { class: "error", role: "alert", hidden: true });
  details.append(status);
  details.addEventListener("toggle", async () => {
    if (!details.open) return;
    try {
      await markRead(message);
      details.className = "message read";
    } catch (err) {
      status.textContent = messageFor(err);
      status.hidden = false;
    }
  });
  details.open = open;
  return details;
}

/** #/messages: message history or (kind=maintenance) maintenance history, 20 a page. */
export async function messagesPage() {
  const params = hashParams();
  const maintenance = params.get("kind") === "maintenance";
  const page = Number.parseInt(params.get("page") ?? "1", 10) || 1;
  const wanted = params.get("id");
  const query = new URLSearchParams({ page: String(page) });
  if (maintenance) query.set("kind", "maintenance");
  const data = await apiJson("GET", `${BASE}?${query}`);
  const list = el("div", { class: "messages-history", id: "messages-history" });
  list.append(...data.messages.map((m) => entry(m, String(m.id) === wanted)));
  if (!data.messages.length) {
    list.append(el("p", { class: "empty", text: "There are no messages." }));
  }
  if (wanted && !data.messages.some((m) => String(m.id) === wanted)) {
    // A linked message that is not on this page: open it on its own above the list.
    try {
      list.prepend(entry(await apiJson("GET", `${BASE}/${encodeURIComponent(wanted)}`), true));
    } catch (err) {
      const alert = el("p", { class: "error", role: "alert", text: messageFor(err) });
      return [el("h1", { text: "Messages" }), tabs(maintenance), alert];
    }
  }
  return [
    el("h1", { text: maintenance ? "Maintenance history" : "Message history" }),
    tabs(maintenance),
    list,
    pager(data, maintenance),
  ];
}
