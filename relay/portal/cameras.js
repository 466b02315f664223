// Camera list (LIVE-1, LIVE-2): sites with their cameras as tiles, search by name, tile size.
//
// Up to LIVE_TILE_LIMIT tiles on screen play live video; with more (or on a phone/tablet) every
// tile shows a JPEG still refreshed every 30 s and #mode-banner says JPEG mode is active. The
// device list is polled every 10 s so online state follows the sites.

import { ApiError, listDevices, snapshotUrl } from "./api.js";
import { FolderPanel } from "./folders.js";
import { LivePlayer } from "./player.js";

export const LIVE_TILE_LIMIT = 13;
const POLL_MS = 10_000;
const SNAPSHOT_MS = 30_000;
const SIZE_KEY = "rmon.tileSize";
export const touchDevice = matchMedia("(hover: none) and (pointer: coarse)");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function badge(online) {
  return el("span", `badge ${online ? "online" : "offline"}`, online ? "Online" : "Offline");
}

/** What the agent says of a camera it cannot serve, in the words of the recorder screen. */
const CAMERA_STATUS = {
  authentication_error: "Authentication error",
  communication_error: "Communication error",
};

function cameraBadge(camera, online) {
  const problem = CAMERA_STATUS[camera.status];
  if (online || !problem) return badge(online);
  const node = el("span", `badge offline status-${camera.status}`, problem);
  node.dataset.status = camera.status;
  return node;
}

function lastSeen(iso) {
  const when = iso ? new Date(iso) : null;
  return when && !Number.isNaN(when.getTime()) ? `last seen ${when.toLocaleString()}` : "";
}

/** One camera's tile: a link to the single view holding a video, a still or a placeholder.
 * Exported for the favorites view (ORG-2), which lays the same tiles out in its own grid. */
export class Tile {
  mode = "";
  player = null;
  img = null;

  constructor(camera) {
    this.id = camera.id;
    this.el = el("a", "camera-tile");
    this.el.dataset.cameraId = camera.id;
    this.el.href = `#/camera/${encodeURIComponent(camera.id)}`;
    this.media = el("div", "tile-media");
    this.name = el("span", "tile-name");
    this.badge = el("span");
    const caption = el("div", "tile-caption");
    caption.append(this.name, this.badge);
    this.el.append(this.media, caption);
  }

  update(camera, siteOnline) {
    this.camera = camera;
    this.online = Boolean(siteOnline && camera.online);
    this.name.textContent = camera.name;
    const next = cameraBadge(camera, this.online);
    this.badge.replaceWith(next);
    this.badge = next;
    this.el.classList.toggle("offline", !this.online);
    this.el.title = [camera.name, camera.manufacturer, camera.model].filter(Boolean).join(" · ");
    const state = this.online ? "online" : (CAMERA_STATUS[camera.status] ?? "offline").toLowerCase();
    this.el.setAttribute("aria-label", `${camera.name} (${state})`);
  }

  /** "live", "jpeg", "offline" or "hidden"; rebuilds the media only when the mode changes. */
  setMode(mode) {
    this.el.hidden = mode === "hidden";
    if (mode === this.mode) return;
    this.release();
    this.mode = mode;
    if (mode === "live") this.#startLive();
    else if (mode === "jpeg") this.#startStill();
    else if (mode === "offline") this.media.append(el("span", "tile-placeholder", "Offline"));
  }

  #startLive() {
    const video = el("video");
    video.muted = true;
    video.playsInline = true;
    video.setAttribute("aria-label", `Live video of ${this.camera.name}`);
    const status = el("p", "player-status");
    status.hidden = true;
    this.media.append(video, status);
    this.player = new LivePlayer(video, this.id, { statusElement: status });
  }

  #startStill() {
    this.img = el("img");
    this.img.alt = `Still image of ${this.camera.name}`;
    this.img.decoding = "async";
    const failed = el("p", "player-status", "No image");
    failed.hidden = true;
    this.img.addEventListener("error", () => (failed.hidden = false));
    this.img.addEventListener("load", () => (failed.hidden = true));
    this.media.append(this.img, failed);
    this.refreshStill();
  }

  refreshStill() {
    if (this.img) this.img.src = `${snapshotUrl(this.id)}?t=${Date.now()}`;
  }

  /** Stop the video (closing its socket) and empty the media area. */
  release() {
    this.player?.destroy();
    this.player = null;
    this.img = null;
    this.media.replaceChildren();
    this.mode = "";
  }
}

/** A site (device) heading with its tiles. */
class Site {
  constructor(device) {
    this.el = el("section", "site");
    this.el.dataset.deviceId = device.id;
    this.head = el("header", "site-head");
    this.tiles = el("div", "tiles");
    this.el.append(this.head, this.tiles);
  }

  update(device) {
    const title = el("h2", "site-name", device.name || device.id);
    const meta = [device.agent_version ? `agent ${device.agent_version}` : ""];
    if (!device.online) meta.push(lastSeen(device.last_seen_at));
    const info = el("a", "site-info-link", "Device information");
    info.href = `#/device/${encodeURIComponent(device.id)}`;
    info.setAttribute("aria-label", `Device information of ${device.name || device.id}`);
    this.head.replaceChildren(
      title,
      badge(device.online),
      el("span", "site-meta", meta.filter(Boolean).join(" · ")),
      info,
    );
  }
}

/** Put child at position index of parent unless it is already there (moving pauses video). */
function place(parent, child, index) {
  if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] ?? null);
}

export class CamerasView {
  #section = document.getElementById("cameras-view");
  #list = document.getElementById("camera-list");
  #search = document.getElementById("camera-search");
  #size = document.getElementById("tile-size");
  #banner = document.getElementById("mode-banner");
  #error = document.getElementById("list-error");
  #empty = document.getElementById("list-empty");
  #sites = new Map();
  #tiles = new Map();
  #pollTimer = 0;
  #stillTimer = 0;
  #visible = false;
  #deviceFilter = null; // ORG-1: the folder picked in the panel (device id → shown?), or null
  #folders = new FolderPanel(document.getElementById("folder-panel"), (filter) => {
    this.#deviceFilter = filter;
    this.#applyModes();
  });

  constructor() {
    this.#search.addEventListener("input", () => this.#applyModes());
    this.#size.value = localStorage.getItem(SIZE_KEY) ?? "medium";
    this.#list.dataset.size = this.#size.value;
    this.#size.addEventListener("change", () => {
      this.#list.dataset.size = this.#size.value;
      localStorage.setItem(SIZE_KEY, this.#size.value);
    });
    document.getElementById("list-fullscreen").addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else this.#section.requestFullscreen?.();
    });
    touchDevice.addEventListener("change", () => this.#applyModes());
  }

  show() {
    this.#section.hidden = false;
    this.#visible = true;
    this.refresh();
    this.#folders.refresh();
    this.#pollTimer = setInterval(() => this.refresh(), POLL_MS);
    this.#stillTimer = setInterval(() => this.#refreshStills(), SNAPSHOT_MS);
  }

  /** Hide and stop everything: no socket stays open behind the single view. */
  hide() {
    this.#visible = false;
    this.#section.hidden = true;
    clearInterval(this.#pollTimer);
    clearInterval(this.#stillTimer);
    for (const tile of this.#tiles.values()) tile.release();
  }

  /** Forget every site and tile: the next account to sign in must not see this one's. */
  clear() {
    this.hide();
    this.#forget(this.#tiles, new Set(), (tile) => tile.release());
    this.#forget(this.#sites, new Set(), () => {});
    this.#search.value = "";
  }

  async refresh() {
    let devices;
    try {
      devices = await listDevices();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) this.#showError(err.toString());
      return;
    }
    if (!this.#visible) return;
    this.#showError("");
    this.#render(devices);
  }

  #showError(text) {
    this.#error.textContent = text ? `Could not load the camera list: ${text}` : "";
    this.#error.hidden = !text;
  }

  #render(devices) {
    const seenSites = new Set();
    const seenTiles = new Set();
    devices.forEach((device, i) => {
      const site = this.#sites.get(device.id) ?? new Site(device);
      this.#sites.set(device.id, site);
      seenSites.add(device.id);
      site.update(device);
      place(this.#list, site.el, i);
      (device.cameras ?? []).forEach((camera, j) => {
        const tile = this.#tiles.get(camera.id) ?? new Tile(camera);
        tile.deviceId = device.id;
        this.#tiles.set(camera.id, tile);
        seenTiles.add(camera.id);
        tile.update(camera, device.online);
        place(site.tiles, tile.el, j);
      });
    });
    this.#forget(this.#tiles, seenTiles, (tile) => tile.release());
    this.#forget(this.#sites, seenSites, () => {});
    this.#applyModes();
  }

  #forget(map, seen, release) {
    for (const [id, item] of map) {
      if (seen.has(id)) continue;
      release(item);
      item.el.remove();
      map.delete(id);
    }
  }

  /** Apply the search, pick live or JPEG mode, and say which one is on. */
  #applyModes() {
    const query = this.#search.value.trim().toLocaleLowerCase();
    const tiles = [...this.#tiles.values()];
    const inFolder = (t) => !this.#deviceFilter || this.#deviceFilter(t.deviceId);
    const shown = tiles.filter(
      (t) => inFolder(t) && t.camera.name.toLocaleLowerCase().includes(query),
    );
    const jpeg = shown.length > LIVE_TILE_LIMIT || touchDevice.matches;
    for (const tile of tiles) {
      let mode = "hidden";
      if (shown.includes(tile)) mode = !tile.online ? "offline" : jpeg ? "jpeg" : "live";
      tile.setMode(mode);
    }
    for (const site of this.#sites.values()) {
      site.el.hidden = ![...site.tiles.children].some((t) => !t.hidden);
    }
    this.#showBanner(jpeg, shown.length);
    this.#showEmpty(tiles.length, shown.length);
  }

  #showBanner(jpeg, count) {
    const why = touchDevice.matches
      ? "on a phone or tablet"
      : `${count} cameras on screen (more than ${LIVE_TILE_LIMIT})`;
    this.#banner.textContent = jpeg
      ? `JPEG mode is active: ${why}, tiles show still images refreshed every 30 s. ` +
        "Open a camera or narrow the search for live video."
      : "";
    this.#banner.hidden = !jpeg;
  }

  #showEmpty(total, shown) {
    let text = "";
    if (total === 0) text = "No cameras yet. Register a site with “rmon-agent register”.";
    else if (shown === 0 && this.#deviceFilter) text = "No camera in this folder matches.";
    else if (shown === 0) text = "No camera matches this search.";
    this.#empty.textContent = text;
    this.#empty.hidden = !text;
  }

  #refreshStills() {
    for (const tile of this.#tiles.values()) if (tile.mode === "jpeg") tile.refreshStill();
  }
}
