// The portal's entry point: session check, hash routes, logout.
//
// Routes: #/cameras (list), #/camera/<id> (single view). Without a session the login view shows
// whatever the hash says, and the route is taken after a successful login.

import { currentSession, forgetSession, logout } from "./api.js";
import { CamerasView } from "./cameras.js";
import { LoginView } from "./login.js";
import { SingleView } from "./single.js";

const topbar = document.getElementById("topbar");
const accountName = document.getElementById("account-name");
const bootMessage = document.getElementById("boot-message");

const login = new LoginView(onLoggedIn);
const cameras = new CamerasView();
const single = new SingleView();
let account = null;
let current = null;

function showView(view, ...args) {
  if (current !== view) current?.hide();
  else if (view === single) single.hide(); // another camera: close the old player first
  current = view;
  view.show(...args);
}

function route() {
  bootMessage.hidden = true;
  if (!account) {
    topbar.hidden = true;
    showView(login);
    return;
  }
  topbar.hidden = false;
  const match = location.hash.match(/^#\/camera\/(.+)$/);
  if (match) showView(single, decodeURIComponent(match[1]));
  else if (current !== cameras) showView(cameras);
}

function setAccount(value) {
  account = value;
  accountName.textContent = value ? value.name || value.email || "" : "";
}

function onLoggedIn(value) {
  setAccount(value);
  if (!location.hash.startsWith("#/camera/")) location.hash = "#/cameras";
  route();
}

function signedOut(message) {
  setAccount(null);
  forgetSession();
  current?.hide();
  current = null;
  topbar.hidden = true;
  showView(login, message);
}

async function boot() {
  try {
    setAccount(await currentSession());
  } catch (err) {
    bootMessage.hidden = true;
    showView(login, `Cannot check the session: ${err}`);
    return;
  }
  route();
}

window.addEventListener("hashchange", () => {
  if (account) route();
});

window.addEventListener("rmon:unauthorized", (ev) => {
  if (!account) return;
  signedOut(`Your session has ended; please sign in again. ${ev.detail ?? ""}`.trim());
});

document.getElementById("logout-button").addEventListener("click", async () => {
  current?.hide();
  current = null;
  try {
    await logout();
  } catch {
    // the session ends here either way; the server forgets it when it times out
  }
  history.replaceState(null, "", location.pathname); // the next login starts at the list
  signedOut("");
});

boot();
