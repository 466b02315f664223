// Favorites (ORG-2, manual 5.3.2 and 5.5): each viewer's favorite groups, up to 50.
//
// Routes: #/favorites (the groups: create, open, sort and delete), #/favorites/<id> (the group's
// cameras as live tiles in its layout: 4, 9, 12, 16, 30-split or custom), #/favorites/<id>/edit
// (title, layout, camera selection and arrangement). The tiles are the camera list's own Tile
// (cameras.js) with its LivePlayer, so a favorite plays exactly like the list: live video up to
// LIVE_TILE_LIMIT tiles, JPEG stills beyond that or on a phone.
//
// The relay applies each change at once (no separate Save step), checks every camera against
// the viewer's rights and answers the manual's limits with 91103…91105; messageFor shows them.
// "Set as top page" (manual 5.5.12) is the group's start_page flag, kept by the relay per
// viewer; app.js opens that group after login.

import { apiJson, listDevices, listFavorites } from "./api.js";
import { LIVE_TILE_LIMIT, Tile, touchDevice } from "./cameras.js";
import { confirmDialog } from "./folders.js";
import { el, form, status } from "./forms.js";
import { messageFor } from "./messages.js";

const FAVORITES = "/api/v1/favorites";
const LAYOUTS = [
  ["4", "4-split"],
  ["9", "9-split"],
  ["12", "12-split"],
  ["16", "16-split"],
  ["30", "30-split"],
  ["custom", "Custom"],
];
const CANVAS = 1000; // custom tiles are stored in thousandths of the canvas
const NEW_TILE = 250; // a camera added to a custom layout starts a quarter of the canvas wide
const POLL_MS = 10_000;
const SNAPSHOT_MS = 30_000;

const groupPath = (id) => `${FAVORITES}/${encodeURIComponent(id)}`;
const layoutName = (layout) => LAYOUTS.find(([key]) => key === layout)?.[1] ?? layout;

/** The hash of the viewer's start-page group, or null (then the camera list is the start). */
export async function startPageHash() {
  try {
    const { start_page: id } = await listFavorites();
    return id ? `#/favorites/${encodeURIComponent(id)}` : null;
  } catch {
    return null; // the start page is a convenience: the camera list will do
  }
}

/** Cameras by id with their site's online state, from the device list. */
async function cameraIndex() {
  const index = new Map();
  for (const device of await listDevices()) {
    for (const camera of device.cameras ?? []) index.set(camera.id, { camera, device });
  }
  return index;
}

function layoutSelect(id, selected) {
  const select = el("select", { id });
  for (const [value, text] of LAYOUTS) {
    const option = el("option", { value, text });
    option.selected = value === selected;
    select.append(option);
  }
  return select;
}

// --- #/favorites --------------------------------------------------------------------------

/** #/favorites: the groups, a Create form and the manual's "Sort and delete". */
export async function favoritesPage() {
  const data = await loadOrExplain(listFavorites);
  const list = el(
    "ul",
    { class: "favorite-list", id: "favorite-list" },
    ...data.groups.map((g) =>
      el(
        "li",
        {},
        el("a", { href: `#/favorites/${encodeURIComponent(g.id)}`, text: g.name }),
        el("span", {
          class: "help",
          text: ` ${layoutName(g.layout)}, ${g.cameras.length} camera(s)${g.start_page ? ", top page" : ""}`,
        }),
      ),
    ),
  );
  return [
    el("h1", { text: "Favorites" }),
    el("p", { class: "help", text: `${data.groups.length} of ${data.limit} favorite groups.` }),
    data.groups.length ? list : el("p", { class: "empty", text: "No favorite groups yet." }),
    createForm(),
    data.groups.length ? sortForm(data.groups) : "",
  ];
}

async function loadOrExplain(load) {
  try {
    return await load();
  } catch (err) {
    throw new Error(messageFor(err, "favoritesLoad"));
  }
}

function createForm() {
  const title = el("input", { id: "new-favorite-title", maxlength: "32", autocomplete: "off" });
  const layout = layoutSelect("new-favorite-layout", "4");
  return form({
    id: "new-favorite-form",
    title: "Create a group",
    context: "favoritesSave",
    children: [
      el("div", { class: "field" }, el("label", { for: title.id, text: "Favorite title" }), title),
      el("div", { class: "field" }, el("label", { for: layout.id, text: "Layout" }), layout),
    ],
    submit: "OK",
    onSubmit: async () => {
      const group = await apiJson("POST", FAVORITES, { name: title.value, layout: layout.value });
      location.hash = `#/favorites/${encodeURIComponent(group.id)}/edit`;
      return "";
    },
  });
}

/** Manual 5.5.9 / 5.5.10: reorder with Up/Down (keyboard) and delete with a Yes/No question. */
function sortForm(groups) {
  const order = groups.map((g) => g.id);
  const names = new Map(groups.map((g) => [g.id, g.name]));
  const line = status();
  const list = el("ol", { class: "favorite-sort", id: "favorite-sort" });
  const save = async (next, focusId, key) => {
    try {
      await apiJson("POST", `${FAVORITES}/order`, { groups: next });
      order.splice(0, order.length, ...next);
      render();
      list.querySelector(`[data-id="${focusId}"][data-key="${key}"]`)?.focus();
      line.show("Saved.", "ok");
    } catch (err) {
      line.show(messageFor(err, "favoritesSave"), "error");
    }
  };
  const button = (id, key, text, label, onClick) => {
    const node = el("button", { type: "button", class: "button secondary", text, "aria-label": label });
    node.dataset.id = id;
    node.dataset.key = key;
    node.addEventListener("click", onClick);
    return node;
  };
  const move = (id, step) => {
    const at = order.indexOf(id);
    const to = at + step;
    if (to < 0 || to >= order.length) return;
    const next = [...order];
    [next[at], next[to]] = [next[to], next[at]];
    save(next, id, step < 0 ? "up" : "down");
  };
  const remove = async (id) => {
    if (!(await confirmDialog(`Delete the favorite “${names.get(id)}”?`))) return;
    try {
      await apiJson("DELETE", groupPath(id));
      location.hash = "#/favorites";
      window.dispatchEvent(new HashChangeEvent("hashchange")); // same hash: render again
    } catch (err) {
      line.show(messageFor(err, "favoritesSave"), "error");
    }
  };
  const render = () =>
    list.replaceChildren(
      ...order.map((id) =>
        el(
          "li",
          {},
          el("span", { class: "favorite-sort-name", text: names.get(id) }),
          button(id, "up", "↑", `Move ${names.get(id)} up`, () => move(id, -1)),
          button(id, "down", "↓", `Move ${names.get(id)} down`, () => move(id, 1)),
          button(id, "delete", "🗑", `Delete ${names.get(id)}`, () => remove(id)),
        ),
      ),
    );
  render();
  return el("section", { class: "card page-card", "aria-labelledby": "sort-title" }, el("h2", { id: "sort-title", text: "Sort and delete" }), list, line);
}

// --- #/favorites/<id> ---------------------------------------------------------------------

/** The live screen of one group (manual 5.3.2); owns its tiles' players like CamerasView. */
export class FavoriteView {
  #section = document.getElementById("favorite-view");
  #tiles = [];
  #pollTimer = 0;
  #stillTimer = 0;
  #token = 0;

  async show(groupId, account) {
    this.#stop();
    const token = ++this.#token;
    this.#section.hidden = false;
    this.#section.replaceChildren(el("p", { class: "boot", role: "status", text: "Loading…" }));
    let data;
    let cameras;
    try {
      [data, cameras] = await Promise.all([listFavorites(), cameraIndex()]);
    } catch (err) {
      if (token === this.#token) this.#fail(messageFor(err, "favoritesLoad"));
      return;
    }
    if (token !== this.#token) return;
    const group = data.groups.find((g) => g.id === groupId);
    if (!group) {
      this.#fail("This favorite group does not exist (any more).");
      return;
    }
    this.#render(group, data.groups, cameras, account);
    this.#pollTimer = setInterval(() => this.#poll(token), POLL_MS);
    this.#stillTimer = setInterval(() => this.#tiles.forEach((t) => t.mode === "jpeg" && t.refreshStill()), SNAPSHOT_MS);
  }

  hide() {
    this.#token++;
    this.#stop();
    this.#section.hidden = true;
    this.#section.replaceChildren();
  }

  #stop() {
    clearInterval(this.#pollTimer);
    clearInterval(this.#stillTimer);
    for (const tile of this.#tiles) tile.release();
    this.#tiles = [];
  }

  #fail(text) {
    this.#section.replaceChildren(
      el("p", {}, el("a", { href: "#/favorites", text: "← Favorites" })),
      el("p", { class: "error", role: "alert", text }),
    );
  }

  async #poll(token) {
    let cameras;
    try {
      cameras = await cameraIndex();
    } catch {
      return; // keep the last state; the next poll tries again
    }
    if (token !== this.#token) return;
    for (const tile of this.#tiles) {
      const found = cameras.get(tile.id);
      if (found) tile.update(found.camera, found.device.online);
    }
    this.#applyModes();
  }

  #render(group, groups, cameras, account) {
    const title = el("h1", { id: "favorite-title", tabindex: "-1", text: group.name });
    const switcher = el(
      "nav",
      { class: "favorite-switcher", "aria-label": "Favorite groups" },
      ...groups.map((g) =>
        el("a", {
          href: `#/favorites/${encodeURIComponent(g.id)}`,
          class: "button secondary",
          "aria-current": g.id === group.id ? "page" : false,
          text: g.name,
        }),
      ),
      el("a", { href: "#/favorites", class: "button secondary", text: "All favorites" }),
    );
    const line = status();
    const grid = this.#grid(group, cameras);
    const actions = el(
      "div",
      { class: "toolbar" },
      title,
      el("a", { href: `#/favorites/${encodeURIComponent(group.id)}/edit`, class: "button", id: "favorite-edit", text: "Edit" }),
      topPageButton(group, line),
      account?.role === "subscriber" ? shareButton(group, line, this.#section) : "",
      fullScreenButton(grid),
    );
    this.#section.replaceChildren(actions, switcher, line, grid);
    this.#applyModes();
    title.focus();
  }

  #grid(group, cameras) {
    const grid = el("div", { class: "favorite-grid", id: "favorite-grid" });
    grid.dataset.layout = group.layout;
    if (group.layout === "custom") {
      for (const t of group.cameras) {
        const tile = this.#tile(t, cameras);
        placeCustom(tile.el, t);
        grid.append(tile.el);
      }
      return grid;
    }
    const bySlot = new Map(group.cameras.map((t) => [t.slot, t]));
    for (let slot = 0; slot < group.capacity; slot++) {
      const t = bySlot.get(slot);
      grid.append(t ? this.#tile(t, cameras).el : el("div", { class: "favorite-empty", "aria-hidden": "true" }));
    }
    return grid;
  }

  #tile(t, cameras) {
    const found = cameras.get(t.camera_id);
    const camera = found?.camera ?? { id: t.camera_id, name: "Camera", online: false };
    const tile = new Tile(camera);
    tile.update(camera, found?.device.online);
    this.#tiles.push(tile);
    return tile;
  }

  /** The camera list's rule: live video up to LIVE_TILE_LIMIT tiles, stills beyond. */
  #applyModes() {
    const jpeg = this.#tiles.length > LIVE_TILE_LIMIT || touchDevice.matches;
    for (const tile of this.#tiles) tile.setMode(!tile.online ? "offline" : jpeg ? "jpeg" : "live");
  }
}

/** A custom tile's place: thousandths of the canvas as percentages (CSSOM, which the CSP allows). */
function placeCustom(node, t) {
  node.style.left = `${t.x / 10}%`;
  node.style.top = `${t.y / 10}%`;
  node.style.width = `${t.w / 10}%`;
  node.style.height = `${t.h / 10}%`;
}

/** Manual 5.5.12: [Set as top page], clicked again to clear. */
function topPageButton(group, line) {
  const button = el("button", { type: "button", class: "button secondary", id: "favorite-top-page" });
  const show = (on) => {
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Top page ✓" : "Set as top page";
  };
  show(group.start_page);
  button.addEventListener("click", async () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    try {
      await apiJson("PATCH", groupPath(group.id), { start_page: on });
      show(on);
      line.show(on ? "This favorite is now the top page after login." : "The top page is the camera list again.", "ok");
    } catch (err) {
      line.show(messageFor(err, "favoritesSave"), "error");
    }
  });
  return button;
}

function fullScreenButton(grid) {
  const button = el("button", { type: "button", class: "button secondary", text: "Full screen" });
  button.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else grid.requestFullscreen?.();
  });
  return button;
}

/** Manual 5.5.11: share the group's cameras with shared users (adds shares, never removes). */
function shareButton(group, line, section) {
  const button = el("button", { type: "button", class: "button secondary", id: "favorite-share", text: "Share the favorite cameras" });
  button.addEventListener("click", async () => {
    section.querySelector("#favorite-share-form")?.remove();
    let users;
    try {
      ({ users } = await apiJson("GET", "/api/v1/users"));
    } catch (err) {
      line.show(messageFor(err), "error");
      return;
    }
    const panel = shareForm(group, users, () => panel.remove());
    line.after(panel);
    panel.querySelector("input, button")?.focus();
  });
  return button;
}

function shareForm(group, users, close) {
  const boxes = users.map((u) => {
    const box = el("input", { type: "checkbox", id: `favorite-share-${u.id}`, "aria-label": `Share with ${u.name}` });
    box.dataset.userId = u.id;
    return [u, box];
  });
  const table = el(
    "table",
    { class: "users-table" },
    el("caption", { text: group.name }),
    el("thead", {}, el("tr", {}, ...["E-mail address", "Name", "User type", "Sharing"].map((t) => el("th", { scope: "col", text: t })))),
    el(
      "tbody",
      {},
      ...boxes.map(([u, box]) =>
        el("tr", {}, el("td", { text: u.email }), el("td", { text: u.name }), el("td", { text: "Shared user" }), el("td", {}, box)),
      ),
    ),
  );
  const cancel = el("button", { type: "button", class: "button secondary", text: "Cancel" });
  cancel.addEventListener("click", close);
  const node = form({
    id: "favorite-share-form",
    title: "Sharing cameras",
    children: [
      el("p", {
        class: "help",
        text: "From the favorites screen you cannot configure individual permissions or cancel the sharing. Please do so on the Users screen.",
      }),
      users.length ? table : el("p", { class: "empty", text: "No shared users yet. Add one on the Users screen." }),
      el("p", {}, el("a", { href: "#/users", text: "+ New shared user" })),
      cancel,
    ],
    submit: "Share",
    onSubmit: async () => {
      const chosen = boxes.filter(([, box]) => box.checked).map(([u]) => u.id);
      if (!chosen.length) return "Select the users to share with.";
      await apiJson("POST", `${groupPath(group.id)}/share`, { users: chosen });
      return "Camera sharing is complete.";
    },
  });
  return node;
}

// --- #/favorites/<id>/edit ----------------------------------------------------------------

/** #/favorites/<id>/edit: title, layout, cameras and their arrangement (manual 5.5.5-5.5.8). */
export async function favoriteEditPage(groupId) {
  const [group, cameras, devices] = await loadOrExplain(() =>
    Promise.all([apiJson("GET", groupPath(groupId)), cameraIndex(), listDevices()]),
  );
  return new FavoriteEditor(group, cameras, devices).nodes();
}

class FavoriteEditor {
  #group;
  #cameras;
  #devices;
  #line = status();
  #boxes = new Map(); // camera id → its checkbox in the camera selection
  #arrangement = el("div", { class: "favorite-arrangement", id: "favorite-arrangement" });
  #layoutNote = el("p", { class: "help", id: "favorite-layout-note" });

  constructor(group, cameras, devices) {
    this.#group = group;
    this.#cameras = cameras;
    this.#devices = devices;
  }

  nodes() {
    const back = el("a", { href: `#/favorites/${encodeURIComponent(this.#group.id)}`, text: "← Back to the favorite" });
    return [
      el("p", {}, back),
      el("h1", { text: `Edit the favorite: ${this.#group.name}` }),
      this.#line,
      this.#titleForm(),
      this.#layoutForm(),
      el(
        "div",
        { class: "favorite-editor" },
        this.#selection(),
        el("section", { class: "card page-card", "aria-labelledby": "arrangement-title" }, el("h2", { id: "arrangement-title", text: "Arrangement" }), this.#layoutNote, this.#arrangement),
      ),
    ];
  }

  #titleForm() {
    const title = el("input", { id: "favorite-title-input", maxlength: "32", value: this.#group.name, autocomplete: "off" });
    return form({
      id: "favorite-title-form",
      context: "favoritesSave",
      children: [el("div", { class: "field" }, el("label", { for: title.id, text: "Favorite title" }), title)],
      submit: "Save",
      onSubmit: async () => {
        this.#group = await apiJson("PATCH", groupPath(this.#group.id), { name: title.value });
        document.querySelector("#page-view h1").textContent = `Edit the favorite: ${this.#group.name}`;
        return "Saved.";
      },
    });
  }

  #layoutForm() {
    const layout = layoutSelect("favorite-layout", this.#group.layout);
    return form({
      id: "favorite-layout-form",
      context: "favoritesSave",
      children: [el("div", { class: "field" }, el("label", { for: layout.id, text: "Layout" }), layout)],
      submit: "Change layout",
      onSubmit: async () => {
        this.#group = await apiJson("PATCH", groupPath(this.#group.id), { layout: layout.value });
        this.#render();
        return `The layout is now ${layoutName(this.#group.layout)}.`;
      },
    });
  }

  /** [Camera selection]: a checkbox per camera, by site; checking adds at the first free tile. */
  #selection() {
    const sites = this.#devices.map((d) =>
      el(
        "fieldset",
        { class: "site-share" },
        el("legend", { text: d.name }),
        ...(d.cameras ?? []).map((c) => {
          const id = `favorite-camera-${c.id}`;
          const box = el("input", { type: "checkbox", id });
          box.addEventListener("change", () => this.#toggle(c.id, box));
          this.#boxes.set(c.id, box);
          return el("div", { class: "field check" }, box, el("label", { for: id, text: c.name }));
        }),
      ),
    );
    this.#render();
    return el("section", { class: "card page-card", "aria-labelledby": "selection-title" }, el("h2", { id: "selection-title", text: "Camera selection" }), ...(sites.length ? sites : [el("p", { class: "empty", text: "No cameras yet." })]));
  }

  #tilesOut(tiles) {
    return tiles.map(({ camera_id, slot, x, y, w, h }) =>
      this.#group.layout === "custom" ? { camera_id, x, y, w, h } : { camera_id, slot },
    );
  }

  /** PUT the whole camera list; the relay answers with the group as stored. */
  async #save(tiles, done = "Saved.") {
    this.#line.show("");
    try {
      this.#group = await apiJson("PUT", `${groupPath(this.#group.id)}/cameras`, { cameras: this.#tilesOut(tiles) });
      this.#line.show(done, "ok");
      return true;
    } catch (err) {
      this.#line.show(messageFor(err, "favoritesSave"), "error");
      return false;
    } finally {
      this.#render();
    }
  }

  #toggle(cameraId, box) {
    const tiles = this.#group.cameras.filter((t) => t.camera_id !== cameraId);
    if (box.checked) tiles.push(this.#newTile(cameraId, tiles.length));
    this.#save(tiles, box.checked ? "Added." : "Removed.").then(() => box.focus());
  }

  #newTile(cameraId, count) {
    if (this.#group.layout !== "custom") return { camera_id: cameraId, slot: null };
    const step = (count * 50) % (CANVAS - NEW_TILE); // cascade, so a new tile is seen on top
    return { camera_id: cameraId, x: step, y: step, w: NEW_TILE, h: NEW_TILE };
  }

  #name(cameraId) {
    return this.#cameras.get(cameraId)?.camera.name ?? "Camera";
  }

  #render() {
    const inGroup = new Set(this.#group.cameras.map((t) => t.camera_id));
    for (const [id, box] of this.#boxes) box.checked = inGroup.has(id);
    this.#layoutNote.textContent = `${layoutName(this.#group.layout)}: ${this.#group.cameras.length} of ${this.#group.capacity} cameras.`;
    this.#arrangement.dataset.layout = this.#group.layout;
    if (this.#group.layout === "custom") this.#renderCustom();
    else this.#renderSplit();
  }

  /** Split layouts: one cell per slot; swap with the neighbouring slot, or remove (5.5.6). */
  #renderSplit() {
    const bySlot = new Map(this.#group.cameras.map((t) => [t.slot, t]));
    const cells = [];
    for (let slot = 0; slot < this.#group.capacity; slot++) {
      const t = bySlot.get(slot);
      const cell = el("div", { class: "favorite-cell" });
      cell.dataset.slot = String(slot);
      if (!t) {
        cell.append(el("span", { class: "help", text: `${slot + 1}: empty` }));
      } else {
        const name = this.#name(t.camera_id);
        cell.append(
          el("span", { class: "favorite-cell-name", text: `${slot + 1}: ${name}` }),
          this.#action("←", `Move ${name} earlier`, slot > 0, () => this.#swap(slot, slot - 1)),
          this.#action("→", `Move ${name} later`, slot + 1 < this.#group.capacity, () => this.#swap(slot, slot + 1)),
          this.#action("🗑", `Remove ${name}`, true, () => this.#remove(t.camera_id)),
        );
      }
      cells.push(cell);
    }
    this.#arrangement.replaceChildren(...cells);
  }

  #action(text, label, enabled, onClick) {
    const button = el("button", { type: "button", class: "icon-button", "aria-label": label, title: label, text });
    button.disabled = !enabled;
    button.addEventListener("click", async () => {
      await onClick();
      this.#arrangement.querySelector(`[aria-label="${CSS.escape(label)}"]`)?.focus();
    });
    return button;
  }

  #swap(from, to) {
    const tiles = this.#group.cameras.map((t) => {
      if (t.slot === from) return { ...t, slot: to };
      if (t.slot === to) return { ...t, slot: from };
      return t;
    });
    return this.#save(tiles, "Moved.");
  }

  #remove(cameraId) {
    return this.#save(this.#group.cameras.filter((t) => t.camera_id !== cameraId), "Removed.");
  }

  /** Custom: a canvas preview and, per camera, its place and size in % of the canvas. */
  #renderCustom() {
    const canvas = el("div", { class: "favorite-canvas", id: "favorite-canvas", "aria-hidden": "true" });
    const rows = this.#group.cameras.map((t, index) => {
      const box = el("div", { class: "favorite-box", text: this.#name(t.camera_id) });
      placeCustom(box, t);
      this.#dragBox(box, canvas, index);
      canvas.append(box);
      return this.#customRow(t, index);
    });
    this.#arrangement.replaceChildren(canvas, ...rows);
  }

  #customRow(t, index) {
    const name = this.#name(t.camera_id);
    const inputs = ["x", "y", "w", "h"].map((key) => {
      const input = el("input", { type: "number", min: "0", max: "100", step: "0.1", id: `favorite-${key}-${t.camera_id}` });
      input.value = String(t[key] / 10);
      input.dataset.key = key;
      return input;
    });
    const labels = { x: "Left %", y: "Top %", w: "Width %", h: "Height %" };
    const row = form({
      id: `favorite-place-${t.camera_id}`,
      title: name,
      context: "favoritesSave",
      children: [
        ...inputs.map((input) => el("div", { class: "field" }, el("label", { for: input.id, text: labels[input.dataset.key] }), input)),
        this.#action("🗑", `Remove ${name}`, true, () => this.#remove(t.camera_id)),
      ],
      submit: "Apply",
      onSubmit: async () => {
        const place = Object.fromEntries(inputs.map((i) => [i.dataset.key, Math.round(Number(i.value) * 10)]));
        const tiles = this.#group.cameras.map((other, i) => (i === index ? { ...other, ...place } : other));
        await this.#save(tiles, "Saved.");
        return "";
      },
    });
    row.classList.add("favorite-place");
    return row;
  }

  /** Drag a box on the canvas to move it; with Shift held, to resize it (manual 5.5.2). */
  #dragBox(box, canvas, index) {
    box.addEventListener("pointerdown", (down) => {
      box.setPointerCapture(down.pointerId);
      const rect = canvas.getBoundingClientRect();
      const start = { ...this.#group.cameras[index] };
      const onMove = (ev) => {
        const dx = Math.round(((ev.clientX - down.clientX) / rect.width) * CANVAS);
        const dy = Math.round(((ev.clientY - down.clientY) / rect.height) * CANVAS);
        Object.assign(this.#group.cameras[index], moved(start, dx, dy, down.shiftKey));
        placeCustom(box, this.#group.cameras[index]);
      };
      box.addEventListener("pointermove", onMove);
      box.addEventListener(
        "pointerup",
        () => {
          box.removeEventListener("pointermove", onMove);
          this.#save(this.#group.cameras, "Saved.");
        },
        { once: true },
      );
    });
  }
}

/** A custom tile dragged by (dx, dy) thousandths: moved, or resized, kept inside the canvas. */
function moved(t, dx, dy, resize) {
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  if (resize) {
    return { w: clamp(t.w + dx, 10, CANVAS - t.x), h: clamp(t.h + dy, 10, CANVAS - t.y) };
  }
  return { x: clamp(t.x + dx, 0, CANVAS - t.w), y: clamp(t.y + dy, 0, CANVAS - t.h) };
}
