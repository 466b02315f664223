// Folders (ORG-1, manual 4.4): the subscriber's folder tree, at most 3 levels deep and 100
// sub-folders per folder, with sites (devices) linked in.
//
// Two places use it:
//  - FolderPanel, beside the camera list (manual 4.4 ④: the tree is "displayed on each screen"):
//    picking a folder filters the list to its sites and those of its sub-folders; "Unassigned"
//    keeps sites in no folder. A shared user sees the relay's pruned, read-only tree.
//  - foldersPage (#/folders, the manual's Settings › Create folder screen, subscriber only): add,
//    rename, delete, delete all, reorder (buttons, or drag a folder onto another / the account),
//    link and unlink sites, "unassigned" toggle, search sites by name.
// The relay applies each change at once, so there is no separate Save step.

import { apiJson, listFolderDevices, listFolders } from "./api.js";
import { el, status } from "./forms.js";
import { messageFor } from "./messages.js";

const FOLDERS = "/api/v1/folders";

/** {byId: id → {folder, children}, roots: [...]} from the API's flat, depth-first list. */
export function nest(flat) {
  const byId = new Map(flat.map((folder) => [folder.id, { folder, children: [] }]));
  const roots = [];
  for (const node of byId.values()) {
    const parent = node.folder.parent_id ? byId.get(node.folder.parent_id) : null;
    (parent ? parent.children : roots).push(node);
  }
  return { byId, roots };
}

/** Every site id linked to the folder or any folder below it. */
function devicesUnder(node, into = new Set()) {
  for (const id of node.folder.devices) into.add(id);
  for (const child of node.children) devicesUnder(child, into);
  return into;
}

/** "Shop › Floor 1": a folder's path, for hover text and the device list. */
function pathOf(byId, folderId) {
  const names = [];
  for (let node = byId.get(folderId); node; node = byId.get(node.folder.parent_id)) {
    names.unshift(node.folder.name);
  }
  return names.join(" › ");
}

/** A modal Yes/No question (manual 4.4.3); resolves true for Yes. Esc or No: false. */
export function confirmDialog(text) {
  const yes = el("button", { type: "button", class: "button", text: "Yes" });
  const no = el("button", { type: "button", class: "button secondary", text: "No" });
  const dialog = el(
    "dialog",
    { class: "confirm-dialog", "aria-label": "Confirm" },
    el("p", { text }),
    el("div", { class: "page-actions" }, yes, no),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", () => done(false));
    dialog.showModal();
    no.focus(); // the safe answer under the keyboard
  });
}

/** The folder filter beside the camera list; calls ``onFilter(predicate | null)``. */
export class FolderPanel {
  #nav;
  #onFilter;
  #selected = "all"; // "all", "unassigned" or a folder id

  constructor(nav, onFilter) {
    this.#nav = nav;
    this.#onFilter = onFilter;
  }

  async refresh() {
    let tree;
    try {
      tree = await listFolders();
    } catch {
      return; // the camera list reports connection problems; the panel just stays as it was
    }
    this.#render(tree.folders ?? []);
  }

  #render(flat) {
    const { byId, roots } = nest(flat);
    if (!flat.length || (this.#selected !== "all" && this.#selected !== "unassigned" && !byId.has(this.#selected))) {
      this.#selected = "all";
    }
    this.#nav.hidden = !flat.length; // no folders: only the plain device list (manual 4.4 ④)
    const linked = new Set(flat.flatMap((f) => f.devices));
    const filters = new Map([
      ["all", null],
      ["unassigned", (id) => !linked.has(id)],
    ]);
    for (const [id, node] of byId) {
      const under = devicesUnder(node);
      filters.set(id, (device) => under.has(device));
    }
    const pick = (key) => {
      this.#selected = key;
      this.#render(flat);
      this.#nav.querySelector("[aria-current=true]")?.focus();
    };
    const button = (key, text, depth = 0) => {
      const node = el("button", {
        type: "button",
        class: `folder-filter depth-${depth}`,
        "aria-current": String(this.#selected === key),
        text,
      });
      node.dataset.folderId = key;
      node.addEventListener("click", () => pick(key));
      return el("li", {}, node);
    };
    const items = [button("all", "All cameras")];
    const walk = (nodes) => {
      for (const node of nodes) {
        items.push(button(node.folder.id, node.folder.name, node.folder.depth));
        walk(node.children);
      }
    };
    walk(roots);
    items.push(button("unassigned", "Unassigned"));
    this.#nav.replaceChildren(el("h2", { text: "Folders" }), el("ul", { class: "folder-filters" }, ...items));
    this.#onFilter(filters.get(this.#selected) ?? null);
  }
}

/** #/folders: the folder settings screen (subscriber only). */
export async function foldersPage(account) {
  if (account.role !== "subscriber") {
    return [el("h1", { text: "Folders" }), el("p", { class: "error", role: "alert", text: "Only the subscriber can edit folders." })];
  }
  const editor = new FolderEditor(account);
  const nodes = editor.nodes(); // first: load() renders into the controls it makes
  await editor.load();
  return nodes;
}

class FolderEditor {
  #account;
  #flat = [];
  #nested = nest([]);
  #devices = [];
  #selected = null; // null: the account (top level) is selected
  #line = status();
  #tree = el("ul", { class: "folder-tree", id: "folder-tree" });
  #deviceList = el("ul", { class: "folder-device-list", id: "folder-device-list" });
  #target = el("p", { class: "help", id: "folder-target" });
  #name = el("input", { id: "folder-name", maxlength: "32", autocomplete: "off" });
  #rename = el("input", { id: "folder-rename", maxlength: "32", autocomplete: "off" });
  #search = el("input", { id: "folder-device-search", type: "search", autocomplete: "off" });
  #unassigned = el("input", { id: "folder-unassigned", type: "checkbox" });
  #buttons = {};

  constructor(account) {
    this.#account = account;
  }

  async load() {
    const [tree, devices] = await Promise.all([
      listFolders(),
      listFolderDevices({ q: this.#search.value.trim(), unassigned: this.#unassigned.checked }),
    ]);
    this.#flat = tree.folders;
    this.#nested = nest(tree.folders);
    this.#devices = devices;
    if (this.#selected && !this.#nested.byId.has(this.#selected)) this.#selected = null;
    this.#render();
  }

  nodes() {
    const add = el(
      "form",
      { class: "inline-form", id: "add-folder-form", novalidate: true },
      el("label", { for: "folder-name", text: "Folder name" }),
      this.#name,
      el("button", { type: "submit", class: "button", id: "add-folder", text: "Add folder" }),
    );
    add.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#run(() => this.#add());
    });
    const rename = el(
      "form",
      { class: "inline-form", id: "rename-folder-form", novalidate: true },
      el("label", { for: "folder-rename", text: "New name" }),
      this.#rename,
      this.#button("rename", "Rename", null, "submit"),
    );
    rename.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#run(() => this.#renameSelected());
    });
    const actions = el(
      "div",
      { class: "page-actions" },
      this.#button("delete", "Delete folder", () => this.#delete()),
      this.#button("up", "Move up", () => this.#shift(-1)),
      this.#button("down", "Move down", () => this.#shift(1)),
      this.#button("out", "Move out a level", () => this.#outdent()),
    );
    this.#search.addEventListener("input", () => this.#run(() => this.load(), false));
    this.#unassigned.addEventListener("change", () => this.#run(() => this.load(), false));
    return [
      el("h1", { text: "Folders" }),
      el("p", {
        class: "help",
        text: "Up to 100 folders can be linked to one folder. Folders can be created up to 3 levels deep.",
      }),
      this.#line,
      el(
        "div",
        { class: "folder-editor" },
        el(
          "section",
          { class: "card page-card", "aria-labelledby": "folder-tree-title" },
          el("h2", { id: "folder-tree-title", text: "Folder tree" }),
          add,
          rename,
          actions,
          this.#tree,
        ),
        el(
          "section",
          { class: "card page-card", "aria-labelledby": "folder-devices-title" },
          el("h2", { id: "folder-devices-title", text: "Device list" }),
          this.#target,
          el(
            "div",
            { class: "field" },
            el("label", { for: "folder-device-search", text: "Search devices by name" }),
            this.#search,
          ),
          el(
            "div",
            { class: "field check" },
            this.#unassigned,
            el("label", { for: "folder-unassigned", text: "Show only unassigned devices" }),
          ),
          this.#deviceList,
        ),
      ),
    ];
  }

  #button(key, text, onClick, type = "button") {
    const node = el("button", { type, class: "button secondary", id: `folder-${key}`, text });
    if (onClick) node.addEventListener("click", () => this.#run(onClick));
    this.#buttons[key] = node;
    return node;
  }

  /** Run a change, then reload; the relay's refusal shows with the manual's words. */
  async #run(action, reload = true) {
    this.#line.show("");
    try {
      const done = await action();
      if (reload) await this.load();
      if (done) this.#line.show(done, "ok");
    } catch (err) {
      this.#line.show(messageFor(err), "error");
    }
  }

  async #add() {
    const parent_id = this.#selected;
    const created = await apiJson("POST", FOLDERS, { name: this.#name.value, parent_id });
    this.#name.value = "";
    this.#selected = created.id;
    return `Added “${created.name}”.`;
  }

  async #renameSelected() {
    if (!this.#selected) return "Select a folder first.";
    const folder = await apiJson("PATCH", `${FOLDERS}/${encodeURIComponent(this.#selected)}`, {
      name: this.#rename.value,
    });
    return `Renamed to “${folder.name}”.`;
  }

  async #delete() {
    if (!this.#selected) {
      // Manual 4.4.4: with the account selected, Delete folder removes every folder.
      if (!this.#flat.length) return "There are no folders.";
      if (!(await confirmDialog("Delete all folders? Their devices become unassigned."))) return "";
      await apiJson("DELETE", FOLDERS);
      return "All folders were deleted.";
    }
    const name = pathOf(this.#nested.byId, this.#selected);
    if (!(await confirmDialog(`Delete the folder “${name}” and its sub-folders? Their devices become unassigned.`))) {
      return "";
    }
    await apiJson("DELETE", `${FOLDERS}/${encodeURIComponent(this.#selected)}`);
    this.#selected = null;
    return `Deleted “${name}”.`;
  }

  async #move(folderId, parentId, position) {
    await apiJson("POST", `${FOLDERS}/${encodeURIComponent(folderId)}/move`, {
      parent_id: parentId,
      position,
    });
  }

  async #shift(step) {
    const node = this.#nested.byId.get(this.#selected);
    if (!node) return "Select a folder first.";
    const siblings = this.#siblingsOf(node.folder.parent_id);
    const at = siblings.indexOf(node) + step;
    if (at < 0 || at >= siblings.length) return "";
    await this.#move(node.folder.id, node.folder.parent_id, at);
    return "Moved.";
  }

  async #outdent() {
    const node = this.#nested.byId.get(this.#selected);
    const parent = node && this.#nested.byId.get(node.folder.parent_id);
    if (!parent) return node ? "The folder is already at the top level." : "Select a folder first.";
    const siblings = this.#siblingsOf(parent.folder.parent_id);
    await this.#move(node.folder.id, parent.folder.parent_id, siblings.indexOf(parent) + 1);
    return "Moved.";
  }

  #siblingsOf(parentId) {
    return parentId ? this.#nested.byId.get(parentId).children : this.#nested.roots;
  }

  #select(folderId) {
    this.#selected = folderId;
    this.#line.show("");
    this.#render();
    this.#tree.querySelector("[aria-current=true]")?.focus();
  }

  #render() {
    const node = this.#nested.byId.get(this.#selected);
    this.#rename.value = node ? node.folder.name : "";
    for (const key of ["rename", "up", "down", "out"]) this.#buttons[key].disabled = !node;
    this.#rename.disabled = !node;
    this.#buttons.delete.textContent = node ? "Delete folder" : "Delete all folders";
    this.#renderTree();
    this.#renderDevices();
  }

  #renderTree() {
    const account = this.#treeButton(null, this.#account.name || this.#account.email || "Account");
    account.classList.add("folder-account");
    const walk = (nodes) =>
      el(
        "ul",
        {},
        ...nodes.map((node) =>
          el(
            "li",
            {},
            this.#treeButton(node.folder.id, node.folder.name),
            this.#linkedDevices(node.folder),
            node.children.length ? walk(node.children) : "",
          ),
        ),
      );
    this.#tree.replaceChildren(el("li", {}, account, walk(this.#nested.roots)));
  }

  #treeButton(folderId, text) {
    const button = el("button", {
      type: "button",
      class: "folder-node",
      "aria-current": String(this.#selected === folderId),
      text,
    });
    if (folderId) button.dataset.folderId = folderId;
    button.addEventListener("click", () => this.#select(folderId));
    this.#dragAndDrop(button, folderId);
    return button;
  }

  /** Manual 4.4.6: drag a folder onto another (it goes in, last) or onto the account (top). */
  #dragAndDrop(button, folderId) {
    if (folderId) {
      button.draggable = true;
      button.addEventListener("dragstart", (ev) => {
        ev.dataTransfer.setData("text/plain", folderId);
        button.classList.add("dragging");
      });
      button.addEventListener("dragend", () => button.classList.remove("dragging"));
    }
    button.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      button.classList.add("drop-target");
    });
    button.addEventListener("dragleave", () => button.classList.remove("drop-target"));
    button.addEventListener("drop", (ev) => {
      ev.preventDefault();
      button.classList.remove("drop-target");
      const moving = ev.dataTransfer.getData("text/plain");
      if (moving && moving !== folderId) {
        this.#run(async () => {
          await this.#move(moving, folderId, null);
          return "Moved.";
        });
      }
    });
  }

  /** The sites in a folder, each with a trash button (manual 4.4.5 ①). */
  #linkedDevices(folder) {
    if (!folder.devices.length) return "";
    const names = new Map(this.#devices.map((d) => [d.id, d.name]));
    return el(
      "ul",
      { class: "folder-devices" },
      ...folder.devices.map((id) => {
        const name = names.get(id) ?? "Device";
        const remove = el("button", {
          type: "button",
          class: "icon-button",
          "aria-label": `Remove ${name} from ${folder.name}`,
          title: "Remove from the folder",
          text: "🗑",
        });
        remove.addEventListener("click", () => this.#unlink(folder.id, id));
        return el("li", {}, el("span", { text: name }), remove);
      }),
    );
  }

  #unlink(folderId, deviceId) {
    return this.#run(async () => {
      await apiJson(
        "DELETE",
        `${FOLDERS}/${encodeURIComponent(folderId)}/devices/${encodeURIComponent(deviceId)}`,
      );
      return "Removed from the folder.";
    });
  }

  #renderDevices() {
    const folder = this.#nested.byId.get(this.#selected)?.folder;
    this.#target.textContent = folder
      ? `Check the devices to link to “${folder.name}”.`
      : "If an account is selected, devices cannot be added. Select a folder.";
    const items = this.#devices.map((device) => {
      const id = `folder-device-${device.id}`;
      const box = el("input", { type: "checkbox", id });
      box.checked = Boolean(folder) && device.folder_id === folder.id;
      box.disabled = !folder;
      box.addEventListener("change", () => this.#toggle(device, folder, box.checked));
      const where = device.folder_id ? pathOf(this.#nested.byId, device.folder_id) : "Unassigned";
      return el(
        "li",
        { class: "field check" },
        box,
        el("label", { for: id, title: where, text: device.name }),
        el("span", { class: "help", text: where }),
      );
    });
    this.#deviceList.replaceChildren(
      ...(items.length ? items : [el("li", { class: "empty", text: "No devices match." })]),
    );
  }

  #toggle(device, folder, checked) {
    const path = `${FOLDERS}/${encodeURIComponent(folder.id)}/devices/${encodeURIComponent(device.id)}`;
    return this.#run(async () => {
      await apiJson(checked ? "PUT" : "DELETE", path);
      return checked ? `Linked ${device.name}.` : `Removed ${device.name} from the folder.`;
    }).then(() => document.getElementById(`folder-device-${device.id}`)?.focus());
  }
}
