// The relay's JSON API as small async functions.
//
// Errors come back as {"error": {"code": N, "message": "…"}} and are thrown as ApiError. A 401
// carrying a session code (50201 timed out, 50205 forced re-login) also fires "rmon:unauthorized"
// on window so the app can return to the login view from wherever the call was made.

const CSRF_KEY = "rmon.csrf";
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
export const SESSION_CODES = new Set([50201, 50205]);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  /** "message (error 400224)" — what the user sees. */
  toString() {
    return this.code ? `${this.message} (error ${this.code})` : this.message;
  }
}

export function rememberCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
}

function headersFor(method, hasBody) {
  const headers = { Accept: "application/json" };
  if (hasBody) headers["Content-Type"] = "application/json";
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (UNSAFE_METHODS.has(method) && csrf) headers["X-CSRF-Token"] = csrf;
  return headers;
}

async function errorFrom(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  const err = body?.error ?? {};
  return new ApiError(resp.status, err.code ?? 0, err.message ?? `HTTP ${resp.status}`);
}

/** fetch() with CSRF, JSON and our error shape; returns the Response when it is OK. */
export async function call(method, path, body, { notifyUnauthorized = true } = {}) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headersFor(method, body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, 0, "Cannot reach the server. Check the network connection.");
  }
  if (resp.ok) return resp;
  const err = await errorFrom(resp);
  if (notifyUnauthorized && resp.status === 401 && SESSION_CODES.has(err.code)) {
    window.dispatchEvent(new CustomEvent("rmon:unauthorized", { detail: err }));
  }
  throw err;
}

async function json(method, path, body, options) {
  const resp = await call(method, path, body, options);
  return resp.status === 204 ? {} : resp.json();
}

/** Log in; keeps the CSRF token for this tab and returns the account. */
export async function login(email, password) {
  const data = await json("POST", "/api/v1/auth/login", { email, password }, {
    notifyUnauthorized: false,
  });
  rememberCsrf(data.csrf_token);
  return data.account;
}

/** The current session's account, or null when not logged in (401). */
export async function currentSession() {
  try {
    const data = await json("GET", "/api/v1/auth/session", undefined, {
      notifyUnauthorized: false,
    });
    rememberCsrf(data.csrf_token);
    return data.account ?? data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/** End the session on the server (best effort) and forget the CSRF token. */
export async function logout() {
  try {
    await call("POST", "/api/v1/auth/logout", undefined, { notifyUnauthorized: false });
  } finally {
    sessionStorage.removeItem(CSRF_KEY);
  }
}

export function forgetSession() {
  sessionStorage.removeItem(CSRF_KEY);
}

/** Sites (devices) with their cameras. */
export async function listDevices() {
  const data = await json("GET", "/api/v1/devices");
  return data.devices ?? [];
}

export function snapshotUrl(cameraId) {
  return `/api/v1/cameras/${encodeURIComponent(cameraId)}/snapshot`;
}

/** The camera's current image as a Blob (image/jpeg). */
export async function fetchSnapshot(cameraId) {
  const resp = await call("GET", snapshotUrl(cameraId));
  return resp.blob();
}

export function liveUrl(cameraId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/cameras/${encodeURIComponent(cameraId)}/live`;
}

/** Any JSON call (the account and user screens); resolves to the body ({} for 204). */
export function apiJson(method, path, body, options) {
  return json(method, path, body, options);
}

/** The folder tree (ORG-1): {folders (flat, depth first), editable, max_depth, max_children}. */
export function listFolders() {
  return json("GET", "/api/v1/folders");
}

/** Sites with the folder each is in; ``q`` searches names, ``unassigned`` keeps folderless ones. */
export async function listFolderDevices({ q = "", unassigned = false } = {}) {
  const query = new URLSearchParams({ q, unassigned: String(unassigned) });
  const data = await json("GET", `/api/v1/folders/devices?${query}`);
  return data.devices ?? [];
}

/** The viewer's favorite groups (ORG-2): {groups, limit, start_page}. */
export function listFavorites() {
  return json("GET", "/api/v1/favorites");
}
