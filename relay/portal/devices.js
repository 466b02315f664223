// Camera settings (CAM-1) and device information (DEV-1) pages, rendered into the page view.
//
// #/settings/cameras: every site (recorder) and its cameras with an editable name; the changed
// names go to PATCH /api/v1/devices in one call, which renames all of them or none.
// #/device/<id>: the site's agent information and each camera's model, serial number, MAC,
// firmware, network and status, read from the existing device and camera APIs.

import { apiJson, listDevices } from "./api.js";
import { el, status } from "./forms.js";
import { messageFor } from "./messages.js";

/** CAM-1: names of sites and cameras (the relay's NAME_MAX). */
export const NAME_MAX = 20;

/** Status words of the manual's device tree (4.2.1) and recorder screen. */
const STATUS_TEXT = {
  normal: "Normal",
  communication_error: "Communication error",
  authentication_error: "Authentication error",
};

function statusBadge(value) {
  const node = el("span", {
    class: `status-badge status-${value}`,
    text: STATUS_TEXT[value] ?? value ?? "-",
  });
  node.dataset.status = value ?? "";
  return node;
}

/** Characters as the relay counts them (code points, not UTF-16 units). */
function length(text) {
  return [...text.trim()].length;
}

function backLink() {
  return el("a", { class: "button secondary", href: "#/cameras", text: "← Cameras" });
}

// --- camera settings (CAM-1) -------------------------------------------------------------------

let uid = 0;

/** One name input with its label and a live "n / 20" counter. */
function nameField(label, item, kind) {
  const id = `name-${++uid}`;
  const counterId = `${id}-count`;
  const input = el("input", {
    id,
    type: "text",
    class: "name-input",
    value: item.name ?? "",
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": `${counterId} names-limit`,
  });
  input.dataset.id = item.id;
  input.dataset.kind = kind;
  input.dataset.original = item.name ?? "";
  const counter = el("span", { id: counterId, class: "name-count", "aria-live": "polite" });
  const update = () => {
    const n = length(input.value);
    counter.textContent = `${n} / ${NAME_MAX}`;
    const over = n > NAME_MAX;
    counter.classList.toggle("over", over);
    input.classList.toggle("changed", input.value.trim() !== input.dataset.original);
    if (over) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
  input.addEventListener("input", update);
  update();
  const row = el(
    "div",
    { class: `field name-field ${kind}` },
    el("label", { for: id, text: label }),
    el("div", { class: "name-row" }, input, counter),
  );
  return [row, input];
}

/** "2.name: at most 20 characters" → which input, and the message without the index. */
function fieldOfError(err, sent, inputs) {
  const match = /^(\d+)\.name: (.*)$/.exec(err?.message ?? "");
  if (!match) return [null, messageFor(err)];
  const input = inputs.find((i) => i.dataset.id === sent[Number(match[1])]?.id) ?? null;
  const label = input ? input.labels?.[0]?.textContent ?? "" : "";
  const text = `${label ? `${label}: ` : ""}${match[2]}`;
  return [input, err.code ? `${text} (error ${err.code})` : text];
}

export async function cameraSettingsPage() {
  const devices = await listDevices();
  const inputs = [];
  const groups = devices.map((device) => {
    const [siteRow, siteInput] = nameField(`Site ${device.name || device.id}`, device, "site");
    inputs.push(siteInput);
    const cameraRows = (device.cameras ?? []).map((camera) => {
      const [row, input] = nameField(`Camera ${camera.name || camera.id}`, camera, "camera");
      inputs.push(input);
      return row;
    });
    const group = el(
      "fieldset",
      { class: "site-names" },
      el("legend", { text: device.name || device.id }),
      siteRow,
      ...cameraRows,
    );
    group.dataset.deviceId = device.id;
    return group;
  });
  const line = status();
  line.id = "names-status";
  const apply = el("button", { type: "submit", class: "button", id: "names-apply", text: "Apply" });
  const form = el(
    "form",
    { class: "card page-card", id: "camera-settings-form", novalidate: true },
    el("h1", { text: "Camera settings" }),
    el("p", {
      class: "help",
      id: "names-limit",
      text:
        `Names of sites and cameras can be up to ${NAME_MAX} characters. ` +
        "Change several names, then apply them together.",
    }),
    ...(groups.length ? groups : [el("p", { class: "empty", text: "No sites yet." })]),
    line,
    apply,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const input of inputs) input.removeAttribute("aria-errormessage");
    const changed = inputs.filter((i) => i.value.trim() !== i.dataset.original);
    if (!changed.length) {
      line.show("No names were changed.");
      return;
    }
    // Sent as typed (trimmed): the relay is the judge of the limit, and its refusal is shown.
    const sent = changed.map((i) => ({ id: i.dataset.id, name: i.value.trim() }));
    apply.disabled = true;
    line.show("Saving…");
    try {
      const answer = await apiJson("PATCH", "/api/v1/devices", sent);
      for (const input of changed) {
        input.value = input.value.trim();
        input.dataset.original = input.value;
        input.dispatchEvent(new Event("input"));
      }
      line.show(`Renamed ${answer.renamed ?? sent.length} device(s).`, "ok");
    } catch (err) {
      const [input, text] = fieldOfError(err, sent, inputs);
      line.show(text, "error");
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-errormessage", line.id);
        input.focus();
      }
    } finally {
      apply.disabled = false;
    }
  });
  return [el("div", { class: "page-actions" }, backLink()), form];
}

// --- device information (DEV-1) ----------------------------------------------------------------

function dash(value) {
  if (value === null || value === undefined || value === "") return "-";
  return String(value);
}

function facts(rows) {
  const list = el("dl", { class: "facts" });
  for (const [term, value] of rows) {
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = dash(value);
    list.append(el("dt", { text: term }), dd);
  }
  return list;
}

function interfaceText(entry) {
  return Object.entries(entry)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

function siteCard(device, info, failure) {
  const network = info?.network ?? [];
  const macs = network.map((n) => n.mac).filter(Boolean);
  const card = el(
    "section",
    { class: "card page-card site-info", "aria-labelledby": "site-info-title" },
    el("h2", { id: "site-info-title", text: `Site ${device.name || device.id}` }),
    facts([
      ["Status", statusBadge(info?.status ?? (device.online ? "normal" : "communication_error"))],
      ["Model", info?.model],
      ["Serial number", info?.serial_number ?? device.id],
      ["MAC address", macs.join(", ")],
      ["Firmware version", info?.firmware_version],
      ["Agent version", info?.agent_version ?? device.agent_version],
      ["Host name", info?.hostname],
      ["Network", network.map(interfaceText).join("; ")],
    ]),
  );
  if (failure) card.append(el("p", { class: "error", role: "alert", text: failure }));
  return card;
}

function networkText(dev) {
  if (!dev?.address) return "";
  if (dev.dhcp === true) return `${dev.address} (DHCP)`;
  if (dev.dhcp === false) return `${dev.address} (static)`;
  return dev.address;
}

function cameraRow(camera, detail, failure) {
  const dev = detail?.device ?? {};
  const cells = [
    camera.name,
    statusBadge(camera.status),
    dev.manufacturer ?? camera.manufacturer,
    dev.model ?? camera.model,
    dev.serial_number,
    dev.mac,
    dev.firmware_version,
    networkText(dev),
  ];
  const row = el("tr");
  row.dataset.cameraId = camera.id;
  row.dataset.status = camera.status ?? "";
  cells.forEach((value, i) => {
    const cell = el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {});
    if (value instanceof Node) cell.append(value);
    else cell.textContent = dash(value);
    row.append(cell);
  });
  const note = failure || (detail?.error ? detail.error : "");
  row.title = note;
  return row;
}

function cameraTable(device, details) {
  const head = el("tr");
  for (const title of [
    "Camera",
    "Status",
    "Manufacturer",
    "Model",
    "Serial number",
    "MAC address",
    "Firmware version",
    "Network",
  ]) {
    head.append(el("th", { scope: "col", text: title }));
  }
  const body = el("tbody");
  (device.cameras ?? []).forEach((camera, i) => {
    const result = details[i];
    const ok = result.status === "fulfilled";
    body.append(cameraRow(camera, ok ? result.value : null, ok ? "" : messageFor(result.reason)));
  });
  return el(
    "section",
    { class: "card page-card", "aria-labelledby": "camera-info-title" },
    el("h2", { id: "camera-info-title", text: "Cameras" }),
    device.cameras?.length
      ? el(
          "div",
          { class: "table-scroll" },
          el("table", { class: "users-table device-table", id: "camera-info" }, el("thead", {}, head), body),
        )
      : el("p", { class: "empty", text: "This site has no cameras." }),
  );
}

export async function deviceInfoPage(deviceId) {
  const devices = await listDevices();
  const device = devices.find((d) => d.id === deviceId);
  if (!device) {
    return [
      el("div", { class: "page-actions" }, backLink()),
      el("p", { class: "error", role: "alert", text: "This site does not exist or is not yours." }),
    ];
  }
  const path = (id) => `/api/v1/cameras/${encodeURIComponent(id)}`;
  const [site, ...details] = await Promise.allSettled([
    apiJson("GET", `/api/v1/devices/${encodeURIComponent(deviceId)}/information`),
    ...(device.cameras ?? []).map((camera) => apiJson("GET", path(camera.id))),
  ]);
  const info = site.status === "fulfilled" ? site.value : null;
  const failure = site.status === "fulfilled" ? "" : messageFor(site.reason);
  return [
    el(
      "div",
      { class: "page-actions" },
      backLink(),
      el("a", { class: "button secondary", href: "#/settings/cameras", text: "Camera settings" }),
    ),
    el("h1", { id: "device-info-title", text: "Device information" }),
    siteCard(device, info, failure),
    cameraTable(device, details),
  ];
}
