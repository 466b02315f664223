// Single view (LIVE-4): one camera's live video, a Snapshot button (PLAY-5), full screen.

import { ApiError, fetchSnapshot, listDevices } from "./api.js";
import { LivePlayer } from "./player.js";
import { PtzPanel } from "./ptz.js";

/** "Front door-2024-05-01_12-30-05.jpg": the camera's name and the local time, file-safe. */
export function snapshotFileName(cameraName, when = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  const date = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
  const time = `${pad(when.getHours())}-${pad(when.getMinutes())}-${pad(when.getSeconds())}`;
  const safe = cameraName.replace(/[\\/:*?"<>|\u0000-\u001f]/g, "_").trim() || "camera";
  return `${safe}-${date}_${time}.jpg`;
}

function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000); // let the download start first
}

async function findCamera(cameraId) {
  for (const device of await listDevices()) {
    const camera = (device.cameras ?? []).find((c) => c.id === cameraId);
    if (camera) return { camera, device };
  }
  return null;
}

export class SingleView {
  #section = document.getElementById("single-view");
  #name = document.getElementById("single-name");
  #site = document.getElementById("single-site");
  #video = document.getElementById("single-video");
  #status = document.getElementById("single-status");
  #error = document.getElementById("single-error");
  #stage = document.getElementById("single-stage");
  #snapshot = document.getElementById("snapshot-button");
  #player = null;
  #ptz = null;
  #camera = null;
  #shownAt = 0; // guards against a stale show() finishing after hide()

  constructor() {
    document.getElementById("back-button").addEventListener("click", () => {
      location.hash = "#/cameras";
    });
    this.#snapshot.addEventListener("click", () => this.#takeSnapshot());
    document
      .getElementById("fullscreen-button")
      .addEventListener("click", () => this.#toggleFullscreen());
  }

  async show(cameraId) {
    const token = ++this.#shownAt;
    this.#section.hidden = false;
    this.#name.textContent = "Loading…";
    this.#site.textContent = "";
    this.#snapshot.disabled = true;
    this.#showError("");
    let found;
    try {
      found = await findCamera(cameraId);
    } catch (err) {
      if (token === this.#shownAt) this.#showError(err.toString());
      return;
    }
    if (token !== this.#shownAt) return;
    this.#open(cameraId, found);
  }

  #open(cameraId, found) {
    if (!found) {
      this.#name.textContent = "Camera not found";
      this.#showError("This camera does not exist or is not shared with you.");
      return;
    }
    const { camera, device } = found;
    this.#camera = camera;
    this.#name.textContent = camera.name;
    this.#site.textContent = device.name ?? "";
    this.#name.focus();
    if (!(device.online && camera.online)) {
      this.#showError("This camera is offline.");
      return;
    }
    this.#snapshot.disabled = false;
    this.#player = new LivePlayer(this.#video, cameraId, { statusElement: this.#status });
    const controls = document.getElementById("single-controls");
    this.#ptz = new PtzPanel(controls, this.#stage, camera, (text) => this.#showError(text));
  }

  hide() {
    this.#shownAt += 1;
    this.#section.hidden = true;
    this.#player?.destroy();
    this.#player = null;
    this.#ptz?.destroy();
    this.#ptz = null;
    this.#camera = null;
    this.#status.hidden = true;
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  }

  #showError(text) {
    this.#error.textContent = text;
    this.#error.hidden = !text;
  }

  async #takeSnapshot() {
    const camera = this.#camera;
    if (!camera) return;
    this.#snapshot.disabled = true;
    this.#showError("");
    try {
      saveBlob(await fetchSnapshot(camera.id), snapshotFileName(camera.name));
    } catch (err) {
      const text = err instanceof ApiError ? err.toString() : String(err);
      this.#showError(`Snapshot failed: ${text}`);
    } finally {
      this.#snapshot.disabled = false;
    }
  }

  #toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (this.#stage.requestFullscreen) {
      this.#stage.requestFullscreen().catch(() => {});
    } else {
      this.#video.webkitEnterFullscreen?.(); // iPhone Safari: video element only
    }
  }
}
