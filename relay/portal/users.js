// User management (USER-6, 7, 8; subscriber only): shared users, the cameras shared with each
// (CAM-2: at most 10 users per camera), and the four permission groups.
//
// Routes: #/users (list, new user, permission groups), #/users/<id> (one user's sharing).

import { apiJson, listDevices } from "./api.js";
import { el, field, form } from "./forms.js";

const PERMISSIONS = [
  ["live", "Live operation"],
  ["playback", "Record playback"],
  ["download", "Download (still image/movie)"],
  ["camera_control", "Camera control"],
  ["event_search", "Event (Alarm) search"],
  ["camera_settings", "Settings (Camera settings)"],
];

function groupSelect(groups, selected, id) {
  const select = el("select", { id });
  for (const g of groups) {
    const option = el("option", { value: String(g.number), text: g.name });
    option.selected = g.number === selected;
    select.append(option);
  }
  return select;
}

function labelled(text, control) {
  return el("div", { class: "field" }, el("label", { for: control.id, text }), control);
}

function checkbox(id, text, checked) {
  const input = el("input", { type: "checkbox", id });
  input.checked = Boolean(checked);
  return [el("div", { class: "field check" }, input, el("label", { for: id, text })), input];
}

/** #/users: the list, the new-user form and the permission groups. */
export async function usersPage() {
  const [{ users, limit }, { groups }] = await Promise.all([
    apiJson("GET", "/api/v1/users"),
    apiJson("GET", "/api/v1/permission-groups"),
  ]);
  const names = new Map(groups.map((g) => [g.number, g.name]));
  const rows = users.map((u) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: `#/users/${encodeURIComponent(u.id)}`, text: u.name })),
      el("td", { text: u.email }),
      el("td", { text: names.get(u.group) ?? String(u.group) }),
      el("td", { text: String(u.cameras.length) }),
    ),
  );
  const table = el(
    "table",
    { class: "users-table", id: "users-table" },
    el("caption", { text: `Shared users (${users.length} of ${limit})` }),
    el(
      "thead",
      {},
      el("tr", {}, ...["Name", "E-mail address", "Permission", "Cameras"].map((t) => el("th", { scope: "col", text: t }))),
    ),
    el("tbody", {}, ...rows),
  );
  return [el("h1", { text: "Users" }), table, newUserForm(groups), groupsForm(groups)];
}

function newUserForm(groups) {
  const [name, nameIn] = field("Name", { maxlength: "32", id: "new-user-name" });
  const [email, emailIn] = field("E-mail address", { type: "email", id: "new-user-email" });
  const group = groupSelect(groups, 4, "new-user-group");
  const [settings, settingsIn] = checkbox("new-user-settings", "Allow device settings", false);
  const [guard, guardIn] = checkbox("new-user-guard", "AI Privacy Guard", false);
  return form({
    id: "new-user-form",
    title: "New shared user",
    context: "newUser",
    children: [name, email, labelled("Permission", group), settings, guard],
    submit: "Register",
    onSubmit: async () => {
      const user = await apiJson("POST", "/api/v1/users", {
        name: nameIn.value,
        email: emailIn.value.trim(),
        group: Number(group.value),
        allow_device_settings: settingsIn.checked,
        privacy_guard: guardIn.checked,
      });
      location.hash = `#/users/${encodeURIComponent(user.id)}`;
      return "";
    },
  });
}

function groupsForm(groups) {
  const inputs = [];
  const fieldsets = groups.map((g) => {
    const [name, nameIn] = field("Name", { maxlength: "32", value: g.name, id: `group-${g.number}-name` });
    const boxes = PERMISSIONS.map(([key, text]) => {
      const [wrap, input] = checkbox(`group-${g.number}-${key}`, text, g.permissions.includes(key));
      if (key === "live") input.disabled = true; // live is always on (USER-8)
      return [wrap, input, key];
    });
    inputs.push({ number: g.number, nameIn, boxes });
    return el(
      "fieldset",
      { class: "group" },
      el("legend", { text: `Permission group ${g.number}` }),
      name,
      ...boxes.map(([wrap]) => wrap),
      el("p", { class: "help", text: "Device management and user management: subscriber only." }),
    );
  });
  return form({
    id: "groups-form",
    title: "Permission settings",
    children: fieldsets,
    submit: "Save",
    onSubmit: async () => {
      await apiJson("PUT", "/api/v1/permission-groups", {
        groups: inputs.map(({ number, nameIn, boxes }) => ({
          number,
          name: nameIn.value,
          permissions: boxes.filter(([, input]) => input.checked).map(([, , key]) => key),
        })),
      });
      return "Saved. Shared users log in again.";
    },
  });
}

/** #/users/<id>: sharing (per camera, grouped by site), settings, deletion. */
export async function userPage(userId) {
  const [user, { groups }, devices] = await Promise.all([
    apiJson("GET", `/api/v1/users/${encodeURIComponent(userId)}`),
    apiJson("GET", "/api/v1/permission-groups"),
    listDevices(),
  ]);
  return [
    el("p", {}, el("a", { href: "#/users", text: "← Users" })),
    el("h1", { text: user.name }),
    el("p", { text: user.email }),
    sharingForm(user, devices),
    settingsForm(user, groups),
    deleteForm(user),
  ];
}

function sharingForm(user, devices) {
  const shared = new Set(user.cameras);
  const boxes = [];
  const sites = devices.map((d) =>
    el(
      "fieldset",
      { class: "site-share" },
      el("legend", { text: d.name }),
      ...d.cameras.map((c) => {
        const [wrap, input] = checkbox(`share-${c.id}`, c.name, shared.has(c.id));
        input.dataset.cameraId = c.id;
        boxes.push(input);
        return wrap;
      }),
    ),
  );
  return form({
    id: "sharing-form",
    title: "Sharing",
    children: sites.length ? sites : [el("p", { text: "No cameras yet." })],
    submit: "Apply",
    onSubmit: async () => {
      const cameras = boxes.filter((b) => b.checked).map((b) => b.dataset.cameraId);
      await apiJson("PUT", `/api/v1/users/${encodeURIComponent(user.id)}/shares`, { cameras });
      return `Shared ${cameras.length} camera(s).`;
    },
  });
}

function settingsForm(user, groups) {
  const [name, nameIn] = field("Name", { maxlength: "32", value: user.name, id: "user-name" });
  const group = groupSelect(groups, user.group, "user-group");
  const [settings, settingsIn] = checkbox("user-settings", "Allow device settings", user.allow_device_settings);
  const [guard, guardIn] = checkbox("user-guard", "AI Privacy Guard", user.privacy_guard);
  return form({
    id: "user-settings-form",
    title: "Settings",
    context: "newUser",
    children: [name, labelled("Permission", group), settings, guard],
    submit: "Apply",
    onSubmit: async () => {
      await apiJson("PATCH", `/api/v1/users/${encodeURIComponent(user.id)}`, {
        name: nameIn.value,
        group: Number(group.value),
        allow_device_settings: settingsIn.checked,
        privacy_guard: guardIn.checked,
      });
      return "Saved.";
    },
  });
}

function deleteForm(user) {
  const [pw, pwIn] = field("Your password (subscriber)", {
    type: "password",
    autocomplete: "current-password",
    id: "delete-user-password",
  });
  return form({
    id: "delete-user-form",
    title: "Delete the shared user",
    context: "deleteUser",
    children: [pw],
    submit: "Delete",
    onSubmit: async () => {
      await apiJson("DELETE", `/api/v1/users/${encodeURIComponent(user.id)}`, { password: pwIn.value });
      location.hash = "#/users";
      return "";
    },
  });
}
