// "Mobile devices" on the account page (USER-9, manual 5.2.6 "Unassociate Mobile APP"): the
// apps linked to this viewer's account, each with a Remove button that asks "Yes / No" in its
// own row first. Removing one revokes the app's login at once (the app must log in again).

import { apiJson } from "./api.js";
import { el, status } from "./forms.js";
import { messageFor } from "./messages.js";

const BASE = "/api/v1/me/devices";
const PLATFORMS = { android: "Android", ios: "iOS", web: "Web" };

function when(iso) {
  return new Date(iso).toLocaleString();
}

/** The section: drawn at once, filled when the list arrives. */
export function mobileDevicesSection() {
  const line = status();
  const body = el("div", { class: "app-devices" }, el("p", { class: "boot", text: "Loading…" }));
  const section = el(
    "section",
    { class: "card page-card", id: "app-devices", "aria-labelledby": "app-devices-title" },
    el("h2", { id: "app-devices-title", text: "Mobile devices" }),
    el("p", {
      class: "help",
      text: "Apps signed in to your account. Removing one signs it out at once.",
    }),
    body,
    line,
  );
  load(body, line);
  return section;
}

async function load(body, line) {
  let devices;
  try {
    ({ devices } = await apiJson("GET", BASE));
  } catch (err) {
    line.show(messageFor(err), "error");
    body.replaceChildren();
    return;
  }
  body.replaceChildren(table(devices, body, line));
}

function table(devices, body, line) {
  if (!devices.length) return el("p", { class: "empty", text: "No mobile devices are linked." });
  const head = ["Name", "OS", "Linked", "Last seen", ""].map((t) =>
    el("th", { scope: "col", text: t }),
  );
  return el(
    "table",
    { class: "users-table", id: "app-devices-table" },
    el("thead", {}, el("tr", {}, ...head)),
    el("tbody", {}, ...devices.map((d) => row(d, body, line))),
  );
}

function row(device, body, line) {
  const name = device.current ? `${device.name} (this device)` : device.name;
  const actions = el("td", {});
  const tr = el(
    "tr",
    {},
    el("td", { text: name }),
    el("td", { text: PLATFORMS[device.platform] ?? device.platform }),
    el("td", { text: when(device.created_at) }),
    el("td", { text: when(device.last_seen_at) }),
    actions,
  );
  tr.dataset.id = device.id;
  showRemove(actions, device, body, line);
  return tr;
}

function button(text, attrs = {}) {
  return el("button", { type: "button", class: "button secondary", text, ...attrs });
}

function showRemove(cell, device, body, line) {
  const remove = button("Remove", { "aria-label": `Remove ${device.name}` });
  remove.addEventListener("click", () => confirmRemove(cell, device, body, line));
  cell.replaceChildren(remove);
  return remove;
}

/** "Remove <name>?" Yes / No in the row; Yes unlinks and reloads the list. */
function confirmRemove(cell, device, body, line) {
  const yes = button("Yes", { "aria-label": `Yes, remove ${device.name}` });
  const no = button("No");
  no.addEventListener("click", () => showRemove(cell, device, body, line).focus());
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try {
      await apiJson("DELETE", `${BASE}/${encodeURIComponent(device.id)}`);
    } catch (err) {
      line.show(messageFor(err), "error");
      yes.disabled = false;
      return;
    }
    line.show(`${device.name} was removed.`, "ok");
    await load(body, line);
    body.closest("section")?.querySelector("button")?.focus();
  });
  cell.replaceChildren(el("span", { text: `Remove ${device.name}? ` }), yes, no);
  yes.focus();
}
