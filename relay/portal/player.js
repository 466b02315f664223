// Live player: fragmented MP4 over a WebSocket into Media Source Extensions.
//
// Protocol of GET /api/v1/cameras/{id}/live (WebSocket, same origin, cookie auth):
//   text   {"type":"init","mime":"video/mp4; codecs=\"avc1.42E01E\"","width":640,"height":360}
//   binary the fMP4 init segment (ftyp+moov), then media fragments (moof+mdat, one per frame;
//          several may be coalesced into one message)
//   text   {"type":"init",...} again when the source restarted: a fresh MediaSource is made
//   text   {"type":"error","code":N,"message":"…"} shown on the status element; the relay closes
//
// Latency: each fragment holds one frame and the stream declares no duration, so Chromium starts
// without a start-up buffer. The player holds ~0.1 s behind the newest buffered frame, plays a
// little faster when it falls further behind, and jumps to the live edge past 1.5 s (NOTES.md:
// ~110 ms without stalls, against ~950 ms for go2rtc's playbackRate = gap rule).
//
// Reconnects with full-jitter exponential backoff, except after a session error (50201, 50205:
// fires "rmon:unauthorized" on window), a suspended live session (50203), an unsupported codec,
// or a close code in 4000-4999 (4401 counts as a session error).

import { ApiError, SESSION_CODES, currentSession, liveUrl } from "./api.js";

const HOLD_S = 0.1; // target distance behind the newest buffered frame
const CATCH_UP_S = 0.2; // further behind than this: play 5% faster
const FAST_S = 0.5; // further behind than this: play 10% faster
const JUMP_S = 1.5; // further behind than this: jump to the live edge
const JOIN_MS = 2000; // just after joining, the cached GOP may still trickle in: jump sooner,
const JOIN_JUMP_S = 0.5; // but not for the decoder's own warm-up after the first seek
const KEEP_S = 10; // media kept behind the playhead
const TRIM_SLACK_S = 5; // trim once this much more than KEEP_S has built up
const MAX_BUFFER_S = 30; // even when paused (background tab), never keep more than this
const MAX_QUEUE_BYTES = 16 * 1024 * 1024; // appends waiting this long: start over
const STEER_MS = 100;
const STALL_MS = 1500; // playhead frozen this long with media ahead: skip forward
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
const NO_RETRY_CODES = new Set([50203]); // live session suspended (LIVE-8): resume by reload

const MediaSourceImpl = globalThis.ManagedMediaSource ?? globalThis.MediaSource;

/** Whether this browser can play the stream type through MSE. */
export function isMimeSupported(mime) {
  return Boolean(MediaSourceImpl?.isTypeSupported(mime));
}

/** Start of the buffered range after t when t sits in a gap; null when inside or past the end. */
function gapEnd(ranges, t) {
  for (let i = 0; i < ranges.length; i++) {
    if (t < ranges.start(i)) return ranges.start(i);
    if (t < ranges.end(i)) return null;
  }
  return null;
}

function concat(chunks) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export class LivePlayer extends EventTarget {
  #video;
  #statusEl;
  #ws = null;
  #source = null;
  #buffer = null;
  #url = null;
  #queue = [];
  #queuedBytes = 0;
  #attempt = 0;
  #gotMessage = false;
  #stopped = false;
  #retryTimer = 0;
  #steerTimer = 0;
  #lastTime = -1;
  #lastAdvance = 0;
  #playPending = false;
  #joinedAt = 0; // when the playhead was first put at the live edge of this source (0: not yet)
  #listeners = new AbortController();

  /**
   * @param {HTMLVideoElement} video where the picture goes
   * @param {string} cameraId the camera's id in the API
   * @param {{statusElement?: HTMLElement}} options element that shows connection and error text
   */
  constructor(video, cameraId, { statusElement = null } = {}) {
    super();
    this.#video = video;
    this.cameraId = cameraId;
    this.#statusEl = statusElement;
    this.state = "idle";
    video.muted = true;
    video.playsInline = true;
    video.autoplay = true;
    video.disableRemotePlayback = true; // ManagedMediaSource (iOS) wants this
    const signal = this.#listeners.signal;
    video.addEventListener("playing", () => this.#onPlaying(), { signal });
    video.addEventListener("error", () => this.#onVideoError(), { signal });
    this.#steerTimer = setInterval(() => this.#steer(), STEER_MS);
    this.#connect();
  }

  /** Close the socket, stop the timers and release the MediaSource. */
  destroy() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#steerTimer);
    this.#listeners.abort();
    this.#closeSocket();
    this.#detachSource();
    this.#setStatus("closed");
  }

  #setStatus(state, message = "", code = 0) {
    this.state = state;
    if (this.#statusEl) {
      this.#statusEl.textContent = message;
      this.#statusEl.hidden = !message;
      this.#statusEl.dataset.state = state;
    }
    this.dispatchEvent(new CustomEvent("status", { detail: { state, message, code } }));
  }

  // --- socket -------------------------------------------------------------------------------

  #connect() {
    if (this.#stopped) return;
    this.#gotMessage = false;
    const ws = new WebSocket(liveUrl(this.cameraId));
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => this.#onMessage(ws, ev.data);
    ws.onclose = (ev) => this.#onClose(ws, ev);
    this.#ws = ws;
    if (this.state !== "error") this.#setStatus("connecting", "Connecting…");
  }

  #closeSocket() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      ws.close(1000);
    }
  }

  #onMessage(ws, data) {
    if (ws !== this.#ws) return;
    this.#gotMessage = true;
    if (typeof data !== "string") {
      this.#enqueue(data);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // not ours to understand; the stream goes on
    }
    if (msg.type === "init") this.#init(msg);
    else if (msg.type === "error") this.#onServerError(msg.code ?? 0, msg.message ?? "Error");
  }

  #onServerError(code, message) {
    if (SESSION_CODES.has(code)) this.#unauthorized(new ApiError(401, code, message));
    else if (NO_RETRY_CODES.has(code)) this.#stop("ended", `${message} (error ${code})`, code);
    else this.#setStatus("error", `${message} (error ${code})`, code);
  }

  #onClose(ws, ev) {
    if (ws !== this.#ws || this.#stopped) return;
    this.#ws = null;
    if (ev.code === 4401) {
      this.#unauthorized(new ApiError(401, 50201, ev.reason || "Session expired"));
    } else if (ev.code >= 4000 && ev.code < 5000) {
      this.#stop("ended", ev.reason || `Live view closed by the server (${ev.code})`);
    } else if (this.#gotMessage) {
      this.#retry();
    } else {
      this.#checkSessionThenRetry(); // the upgrade itself failed: 401, 404, network
    }
  }

  async #checkSessionThenRetry() {
    try {
      const session = await currentSession();
      if (this.#stopped) return;
      if (session === null) {
        this.#unauthorized(new ApiError(401, 50201, "Your session has ended"));
        return;
      }
    } catch {
      // server unreachable: keep retrying
    }
    if (this.#stopped) return;
    if (this.state !== "error") this.#setStatus("error", "Cannot connect to the camera");
    this.#retry();
  }

  #retry() {
    if (this.#stopped) return;
    const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.#attempt);
    const delay = cap / 2 + (Math.random() * cap) / 2;
    this.#attempt += 1;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  /** Drop everything and connect again (decode error, browser far behind). */
  #restart(message) {
    this.#setStatus("error", message);
    this.#closeSocket();
    this.#detachSource();
    this.#retry();
  }

  #stop(state, message, code = 0) {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#closeSocket();
    this.#detachSource();
    this.#setStatus(state, message, code);
  }

  #unauthorized(err) {
    this.#stop("unauthorized", err.toString(), err.code);
    window.dispatchEvent(new CustomEvent("rmon:unauthorized", { detail: err }));
  }

  // --- media source -------------------------------------------------------------------------

  #init(msg) {
    this.#detachSource();
    if (!MediaSourceImpl) {
      this.#stop("unsupported", "Live video is not supported by this browser (no MediaSource).");
      return;
    }
    if (!isMimeSupported(msg.mime)) {
      this.#stop("unsupported", `Codec not supported by this browser: ${msg.mime}`);
      return;
    }
    const source = new MediaSourceImpl();
    this.#source = source;
    this.#url = URL.createObjectURL(source);
    source.addEventListener("sourceopen", () => this.#onSourceOpen(source, msg.mime), {
      once: true,
    });
    this.#video.src = this.#url;
  }

  #onSourceOpen(source, mime) {
    if (source !== this.#source) return;
    try {
      const buffer = source.addSourceBuffer(mime);
      buffer.mode = "segments";
      buffer.addEventListener("updateend", () => this.#pump());
      this.#buffer = buffer;
      this.#joinedAt = 0;
    } catch (err) {
      this.#stop("unsupported", `Codec not supported by this browser: ${mime} (${err.name})`);
      return;
    }
    this.#pump();
  }

  #detachSource() {
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#buffer = null;
    this.#lastTime = -1;
    const hadSource = this.#source !== null;
    this.#source = null;
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = null;
    if (hadSource) {
      this.#video.removeAttribute("src");
      this.#video.load();
    }
  }

  #onPlaying() {
    this.#attempt = 0; // frames are on screen: the next outage starts the backoff afresh
    this.#setStatus("playing");
  }

  #onVideoError() {
    if (this.#stopped || !this.#source || !this.#video.error) return;
    this.#restart(`Video could not be decoded (${this.#video.error.message || "error"})`);
  }

  #enqueue(data) {
    this.#queue.push(new Uint8Array(data));
    this.#queuedBytes += data.byteLength;
    if (this.#queuedBytes > MAX_QUEUE_BYTES) {
      this.#restart("The browser fell behind the stream; reconnecting…");
      return;
    }
    this.#pump();
  }

  /** Append everything queued in one go, unless the buffer is busy or needs trimming first. */
  #pump() {
    const buffer = this.#buffer;
    if (!buffer || buffer.updating || this.#source?.readyState !== "open") return;
    if (this.#trim(buffer, false) || this.#queue.length === 0) return;
    const chunk = concat(this.#queue);
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      buffer.appendBuffer(chunk);
    } catch (err) {
      if (err.name !== "QuotaExceededError") {
        this.#restart(`Video could not be buffered (${err.name})`);
        return;
      }
      this.#queue = [chunk];
      this.#queuedBytes = chunk.byteLength;
      if (!this.#trim(buffer, true)) this.#restart("The video buffer is full; reconnecting…");
    }
  }

  /** Remove old media; true when a removal started (updateend will pump again). */
  #trim(buffer, urgent) {
    const ranges = buffer.buffered;
    if (!ranges.length) return false;
    const start = ranges.start(0);
    const end = ranges.end(ranges.length - 1);
    let keepFrom = Math.max(Math.min(this.#video.currentTime, end) - KEEP_S, end - MAX_BUFFER_S);
    if (urgent) keepFrom = Math.max(keepFrom, Math.min(this.#video.currentTime, end) - 1);
    if (keepFrom - start < (urgent ? 0.1 : TRIM_SLACK_S)) return false;
    try {
      buffer.remove(start, keepFrom);
    } catch {
      return false;
    }
    return true;
  }

  // --- latency control ----------------------------------------------------------------------

  /** Hold ~HOLD_S behind the newest frame: speed up when behind, jump gaps and long lags. */
  #steer() {
    const video = this.#video;
    const ranges = video.buffered;
    if (!this.#buffer || !ranges.length || video.seeking) return;
    const end = ranges.end(ranges.length - 1);
    const now = video.currentTime;
    const gap = gapEnd(ranges, now);
    const lag = end - now;
    const joining = performance.now() - this.#joinedAt < JOIN_MS;
    if (!this.#joinedAt || gap !== null) {
      // start at the newest frame, not at the start of the cached GOP; skip holes
      video.currentTime = Math.max(gap ?? ranges.start(0), end - HOLD_S);
      this.#joinedAt ||= performance.now();
    } else if (lag > JUMP_S || (joining && lag > JOIN_JUMP_S) || this.#stalled(now, lag)) {
      video.currentTime = end - HOLD_S;
    }
    const rate = this.#rateFor(end - video.currentTime);
    if (video.playbackRate !== rate) video.playbackRate = rate;
    if (video.paused && !this.#playPending) this.#play();
  }

  #rateFor(lag) {
    if (lag > FAST_S) return 1.1;
    if (lag > CATCH_UP_S) return 1.05;
    // once catching up, keep going until back at the hold point
    if (this.#video.playbackRate > 1 && lag > HOLD_S) return this.#video.playbackRate;
    return 1;
  }

  /** True when the playhead has not moved for STALL_MS although media lies ahead of it. */
  #stalled(now, lag) {
    const t = performance.now();
    if (now !== this.#lastTime || lag < HOLD_S * 3 || this.#video.paused) {
      this.#lastTime = now;
      this.#lastAdvance = t;
      return false;
    }
    if (t - this.#lastAdvance < STALL_MS) return false;
    this.#lastAdvance = t;
    return true;
  }

  #play() {
    this.#playPending = true;
    this.#video
      .play()
      .catch(() => {}) // autoplay refused or interrupted by a new source: the next tick retries
      .finally(() => {
        this.#playPending = false;
      });
  }
}
