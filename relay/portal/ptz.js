// PTZ and image controls of the single view (LIVE-5, LIVE-4 brightness).
//
// Hold a direction button to move, release to stop. On the video: a short click centres the
// point, holding moves towards the pointer (faster further from the centre), the wheel zooms,
// dragging a rectangle zooms into it (area_zoom, the rectangle as fractions of the image).
// Focus far/near while held, auto on click; home (= preset 1 on cameras without one); presets
// 1-10 with register, rename and go to; brightness -, + and reset (to the middle of the range).
// Cameras that report no PTZ get a "Forced PTZ operation" toggle (manual 5.3.12, for old PTZ
// cameras): ON shows the PTZ controls and sends each action with forced: true; a camera without
// PTZ refuses, which is shown like any other error.

import { ApiError, call } from "./api.js";

const CLICK_MS = 250; // shorter than this on the video is a click (centre), longer a hold
const DRAG_PX = 8; // moving further than this before the hold starts draws a zoom rectangle
const WHEEL_STOP_MS = 250; // the wheel has no "release": stop zooming this long after the last turn
const BRIGHTNESS_STEPS = 10; // + and - move a tenth of the camera's range

async function postJson(method, path, body) {
  const resp = await call(method, path, body);
  return resp.status === 204 ? {} : resp.json();
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

export class PtzPanel {
  #root;
  #stage;
  #camera;
  #base;
  #error;
  #presetSelect;
  #presetName;
  #imaging = null;
  #wheelTimer = 0;
  #listeners = [];
  #forced = false;

  /** Build the controls for ``camera`` into ``root``; ``stage`` is the video's container. */
  constructor(root, stage, camera, onError) {
    this.#root = root;
    this.#stage = stage;
    this.#camera = camera;
    this.#base = `/api/v1/cameras/${encodeURIComponent(camera.id)}`;
    this.#error = onError;
    this.#render(new Set(camera.capabilities ?? []));
  }

  /** (Re)build the controls: PTZ where the camera reports it or forced PTZ is on. */
  #render(caps) {
    this.destroy();
    if (!caps.has("ptz")) this.#buildForcedToggle(caps);
    if (caps.has("ptz") || this.#forced) this.#buildPtz(caps);
    if ([...caps].some((c) => c === "imaging:brightness")) this.#buildBrightness();
    this.#root.hidden = this.#root.childElementCount === 0;
  }

  destroy() {
    for (const [target, type, fn] of this.#listeners) target.removeEventListener(type, fn);
    this.#listeners = [];
    clearTimeout(this.#wheelTimer);
    this.#root.replaceChildren();
    this.#root.hidden = true;
  }

  #buildForcedToggle(caps) {
    const label = () => `Forced PTZ operation: ${this.#forced ? "ON" : "OFF"}`;
    const attrs = { type: "button", class: "button secondary", id: "ptz-forced", "aria-pressed": String(this.#forced) };
    const toggle = el("button", attrs, label());
    toggle.title = "For old PTZ cameras that do not report PTZ. Operation is not guaranteed; it does not work for non-PTZ cameras.";
    this.#on(toggle, "click", () => {
      this.#forced = !this.#forced;
      this.#render(caps);
    });
    this.#root.append(toggle);
  }

  #on(target, type, fn, options) {
    target.addEventListener(type, fn, options);
    this.#listeners.push([target, type, fn]);
  }

  async #send(method, path, body) {
    try {
      return await postJson(method, this.#base + path, body);
    } catch (err) {
      this.#error(err instanceof ApiError ? err.toString() : String(err));
      return null;
    }
  }

  #ptz(body) {
    return this.#send("POST", "/ptz", this.#forced ? { ...body, forced: true } : body);
  }

  #buildPtz(caps) {
    const pad = el("div", { class: "ptz-pad", role: "group", "aria-label": "Pan, tilt and zoom" });
    const moves = [
      ["up", "▲", { tilt: 0.5 }],
      ["left", "◀", { pan: -0.5 }],
      ["right", "▶", { pan: 0.5 }],
      ["down", "▼", { tilt: -0.5 }],
      ["zoom-in", "+", { zoom: 0.5 }],
      ["zoom-out", "−", { zoom: -0.5 }],
    ];
    for (const [name, label, speed] of moves) {
      const button = el("button", { type: "button", class: "button ptz-button", "data-ptz": name, "aria-label": name }, label);
      this.#holdToMove(button, { action: "move", ...speed }, { action: "stop" });
      pad.append(button);
    }
    const home = el("button", { type: "button", class: "button secondary", id: "ptz-home" }, "Home");
    this.#on(home, "click", () => this.#ptz({ action: "home" }));
    pad.append(home);
    if (caps.has("focus")) {
      const far = el("button", { type: "button", class: "button secondary", "data-ptz": "focus-far" }, "Focus far");
      const near = el("button", { type: "button", class: "button secondary", "data-ptz": "focus-near" }, "Focus near");
      const auto = el("button", { type: "button", class: "button secondary", "data-ptz": "focus-auto" }, "Auto focus");
      this.#holdToMove(far, { action: "focus", mode: "far" }, { action: "stop" });
      this.#holdToMove(near, { action: "focus", mode: "near" }, { action: "stop" });
      this.#on(auto, "click", () => this.#ptz({ action: "focus", mode: "auto" }));
      pad.append(far, near, auto);
    }
    this.#root.append(pad);
    if (caps.has("presets")) this.#buildPresets();
    this.#videoGestures();
  }

  /** Press sends ``start``; release, leaving or losing the pointer sends ``stop`` once. */
  #holdToMove(target, start, stop) {
    let held = false;
    const release = () => {
      if (!held) return;
      held = false;
      this.#ptz(stop);
    };
    this.#on(target, "pointerdown", (event) => {
      event.preventDefault();
      held = true;
      target.setPointerCapture?.(event.pointerId);
      this.#ptz(start);
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      this.#on(target, type, release);
    }
  }

  #videoGestures() {
    let downAt = 0;
    let moving = false;
    let holdTimer = 0;
    let start = null; // where the pointer went down, while it may still become a drag
    let drag = null; // the rectangle being drawn
    const fraction = (event) => {
      const box = imageBox(this.#stage);
      const clamp = (v) => Math.min(1, Math.max(0, v));
      return { x: clamp((event.clientX - box.left) / box.width), y: clamp((event.clientY - box.top) / box.height) };
    };
    this.#stage.classList.add("ptz-stage");
    this.#on(this.#stage, "pointerdown", (event) => {
      if (event.target.closest?.("button")) return;
      downAt = performance.now();
      start = { clientX: event.clientX, clientY: event.clientY };
      this.#stage.setPointerCapture?.(event.pointerId);
      const { x, y } = fraction(event);
      holdTimer = setTimeout(() => {
        start = null;
        moving = true; // speed grows with the distance from the centre (LIVE-5)
        this.#ptz({ action: "move", pan: round((x - 0.5) * 2), tilt: round((0.5 - y) * 2), zoom: 0 });
      }, CLICK_MS);
    });
    this.#on(this.#stage, "pointermove", (event) => {
      if (!start || moving) return;
      const far = Math.hypot(event.clientX - start.clientX, event.clientY - start.clientY);
      if (!drag && far < DRAG_PX) return;
      clearTimeout(holdTimer); // a drag, not a hold
      drag ??= this.#dragBox();
      drag.show(start, event);
    });
    this.#on(this.#stage, "pointerup", (event) => {
      clearTimeout(holdTimer);
      if (drag) {
        const a = fraction(start);
        const b = fraction(event);
        drag.remove();
        drag = null;
        const x = round4(Math.min(a.x, b.x));
        const y = round4(Math.min(a.y, b.y));
        const w = inside(x, round4(Math.max(a.x, b.x) - x));
        const h = inside(y, round4(Math.max(a.y, b.y) - y));
        if (w > 0 && h > 0) this.#ptz({ action: "area_zoom", x, y, w, h });
      } else if (moving) {
        moving = false;
        this.#ptz({ action: "stop" });
      } else if (downAt && performance.now() - downAt < CLICK_MS) {
        this.#ptz({ action: "centre", ...fraction(event) });
      }
      downAt = 0;
      start = null;
    });
    this.#on(this.#stage, "pointercancel", () => {
      clearTimeout(holdTimer);
      drag?.remove();
      drag = null;
      start = null;
      downAt = 0;
      if (moving) {
        moving = false;
        this.#ptz({ action: "stop" });
      }
    });
    this.#on(
      this.#stage,
      "wheel",
      (event) => {
        event.preventDefault();
        if (!this.#wheelTimer) this.#ptz({ action: "move", zoom: event.deltaY < 0 ? 0.5 : -0.5 });
        clearTimeout(this.#wheelTimer);
        this.#wheelTimer = setTimeout(() => {
          this.#wheelTimer = 0;
          this.#ptz({ action: "stop" });
        }, WHEEL_STOP_MS);
      },
      { passive: false },
    );
  }

  /** The rectangle drawn over the video while dragging. */
  #dragBox() {
    const node = el("div", { class: "zoom-rect", "aria-hidden": "true" });
    this.#stage.append(node);
    const stage = this.#stage;
    return {
      show(from, to) {
        const box = stage.getBoundingClientRect();
        node.style.left = `${Math.min(from.clientX, to.clientX) - box.left}px`;
        node.style.top = `${Math.min(from.clientY, to.clientY) - box.top}px`;
        node.style.width = `${Math.abs(to.clientX - from.clientX)}px`;
        node.style.height = `${Math.abs(to.clientY - from.clientY)}px`;
      },
      remove: () => node.remove(),
    };
  }

  #buildPresets() {
    const box = el("div", { class: "ptz-presets", role: "group", "aria-label": "Presets" });
    this.#presetSelect = el("select", { id: "preset-select", "aria-label": "Preset number" });
    this.#presetName = el("input", { id: "preset-name", type: "text", maxlength: "32", placeholder: "Preset name", "aria-label": "Preset name" });
    const go = el("button", { type: "button", class: "button secondary", id: "preset-goto" }, "Go to");
    const register = el("button", { type: "button", class: "button secondary", id: "preset-register" }, "Register");
    const rename = el("button", { type: "button", class: "button secondary", id: "preset-rename" }, "Rename");
    this.#on(go, "click", () => this.#presetCall("POST", "/goto"));
    this.#on(register, "click", () => this.#presetCall("PUT", "", { name: this.#presetName.value.trim() }));
    this.#on(rename, "click", () => this.#presetCall("PATCH", "", { name: this.#presetName.value.trim() }));
    box.append(this.#presetSelect, this.#presetName, go, register, rename);
    this.#root.append(box);
    this.#showPresets([]);
    this.#send("GET", "/presets").then((answer) => answer && this.#showPresets(answer.presets));
  }

  async #presetCall(method, suffix, body) {
    const slot = this.#presetSelect.value;
    const answer = await this.#send(method, `/presets/${slot}${suffix}`, body);
    if (answer) this.#showPresets(answer.presets);
  }

  #showPresets(presets) {
    const chosen = this.#presetSelect.value || "1";
    const byslot = new Map(presets.map((p) => [String(p.slot), p.name]));
    this.#presetSelect.replaceChildren();
    for (let n = 1; n <= 10; n += 1) {
      const name = byslot.get(String(n));
      const label = `${n}${n === 1 ? " (home)" : ""}: ${name ?? "—"}`;
      this.#presetSelect.append(el("option", { value: String(n), "data-name": name ?? "" }, label));
    }
    this.#presetSelect.value = chosen;
  }

  #buildBrightness() {
    const box = el("div", { class: "ptz-brightness", role: "group", "aria-label": "Brightness" });
    const minus = el("button", { type: "button", class: "button secondary", id: "brightness-down" }, "Brightness −");
    const plus = el("button", { type: "button", class: "button secondary", id: "brightness-up" }, "Brightness +");
    const reset = el("button", { type: "button", class: "button secondary", id: "brightness-reset" }, "Reset");
    this.#on(minus, "click", () => this.#brightness(-1));
    this.#on(plus, "click", () => this.#brightness(1));
    this.#on(reset, "click", () => this.#brightness(0));
    box.append(minus, plus, reset);
    this.#root.append(box);
    this.#send("GET", "/imaging").then((state) => {
      this.#imaging = state;
    });
  }

  async #brightness(direction) {
    const range = this.#imaging?.ranges?.brightness;
    if (!range) return;
    const step = (range.max - range.min) / BRIGHTNESS_STEPS;
    const now = this.#imaging.values.brightness;
    const next = direction === 0 ? (range.min + range.max) / 2 : now + direction * step;
    const value = Math.min(range.max, Math.max(range.min, next));
    const state = await this.#send("PATCH", "/imaging", { brightness: value });
    if (state) this.#imaging = state;
  }
}

/** The displayed image inside the stage: the video's content box (object-fit: contain), or the
 * stage itself before the first frame says how large the image is. */
function imageBox(stage) {
  const video = stage.querySelector("video");
  const box = (video ?? stage).getBoundingClientRect();
  const vw = video?.videoWidth ?? 0;
  const vh = video?.videoHeight ?? 0;
  if (!vw || !vh || !box.width || !box.height) return box;
  const scale = Math.min(box.width / vw, box.height / vh);
  const width = vw * scale;
  const height = vh * scale;
  return { left: box.left + (box.width - width) / 2, top: box.top + (box.height - height) / 2, width, height };
}

function round4(v) {
  return Math.round(v * 10000) / 10000;
}

/** ``size`` trimmed so that ``start + size`` stays within the image despite rounding. */
function inside(start, size) {
  return start + size > 1 ? round4(size - 0.0001) : size;
}

function round(v) {
  return Math.round(Math.min(1, Math.max(-1, v)) * 100) / 100;
}
