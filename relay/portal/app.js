// The portal's entry point: session check, hash routes, logout.
//
// Routes: #/cameras (list), #/camera/<id> (single view), #/settings/cameras (CAM-1 names),
// #/device/<id> (DEV-1 device information). Without a session the login view shows
// whatever the hash says, and the route is taken after a successful login.

import {
  accountPage,
  emailConfirmPage,
  forgotPage,
  initialPasswordPage,
  resetPage,
  signupConfirmPage,
  signupPage,
} from "./account.js";
import { MessagesMenu, messagesPage } from "./announcements.js";
import { currentSession, forgetSession, logout } from "./api.js";
import { CamerasView } from "./cameras.js";
import { cameraSettingsPage, deviceInfoPage } from "./devices.js";
import { FavoriteView, favoriteEditPage, favoritesPage, startPageHash } from "./favorites.js";
import { foldersPage } from "./folders.js";
import { el } from "./forms.js";
import { LoginView } from "./login.js";
import { messageFor } from "./messages.js";
import { SingleView } from "./single.js";
import { userPage, usersPage } from "./users.js";

/** Pages reachable without a session (the e-mail link works signed in too). */
const PUBLIC_PAGES = [
  [/^#\/signup\/confirm/, signupConfirmPage],
  [/^#\/signup/, signupPage],
  [/^#\/password\/forgot/, forgotPage],
  [/^#\/password\/reset/, resetPage],
  [/^#\/email\/confirm/, emailConfirmPage],
];

/** The account and user screens: one section whose content a render function builds. */
class PageView {
  #section = document.getElementById("page-view");
  #token = 0;

  async show(render) {
    const token = ++this.#token;
    this.#section.hidden = false;
    this.#section.replaceChildren(el("p", { class: "boot", role: "status", text: "Loading…" }));
    let nodes;
    try {
      nodes = await render();
    } catch (err) {
      nodes = [el("p", { class: "error", role: "alert", text: messageFor(err) })];
    }
    if (token !== this.#token) return;
    this.#section.replaceChildren(...nodes);
    this.#section.querySelector("input:not([disabled]), select, button, a")?.focus();
  }

  hide() {
    this.#token++;
    this.#section.hidden = true;
    this.#section.replaceChildren();
  }
}

const topbar = document.getElementById("topbar");
const accountName = document.getElementById("account-name");
const bootMessage = document.getElementById("boot-message");

const login = new LoginView(onLoggedIn);
const cameras = new CamerasView();
const single = new SingleView();
const page = new PageView();
const messagesMenu = new MessagesMenu();
const favorite = new FavoriteView();
const navUsers = document.getElementById("nav-users");
const settingsLink = document.getElementById("camera-settings-link");
const folderLink = document.getElementById("folder-settings-link");
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
  const hash = location.hash;
  const open = PUBLIC_PAGES.find(([pattern]) => pattern.test(hash));
  if (open && (!account || hash.startsWith("#/email/confirm"))) {
    topbar.hidden = !account;
    showView(page, open[1]);
    return;
  }
  if (!account) {
    topbar.hidden = true;
    showView(login);
    return;
  }
  topbar.hidden = false;
  navUsers.hidden = account.role !== "subscriber";
  // PATCH /api/v1/devices renames only the account's own sites and cameras (CAM-1).
  settingsLink.hidden = account.role !== "subscriber";
  folderLink.hidden = account.role !== "subscriber"; // ORG-1: the folder tree is the subscriber's
  if (account.must_change_password) {
    showView(page, () => initialPasswordPage(passwordChanged));
    return;
  }
  messagesMenu.refresh(); // MSG-1: the unread count follows the viewer around
  const match = hash.match(/^#\/camera\/(.+)$/);
  const user = hash.match(/^#\/users\/(.+)$/);
  const device = hash.match(/^#\/device\/(.+)$/);
  const group = hash.match(/^#\/favorites\/([^/]+)(\/edit)?$/);
  if (match) showView(single, decodeURIComponent(match[1]));
  else if (user) showView(page, () => userPage(decodeURIComponent(user[1])));
  else if (device) showView(page, () => deviceInfoPage(decodeURIComponent(device[1])));
  else if (group?.[2]) showView(page, () => favoriteEditPage(decodeURIComponent(group[1])));
  else if (group) showView(favorite, decodeURIComponent(group[1]), account);
  else if (hash.startsWith("#/favorites")) showView(page, favoritesPage);
  else if (hash.startsWith("#/folders")) showView(page, () => foldersPage(account));
  else if (hash.startsWith("#/settings/cameras")) showView(page, cameraSettingsPage);
  else if (hash.startsWith("#/users")) showView(page, usersPage);
  else if (hash.startsWith("#/messages")) showView(page, messagesPage);
  else if (hash.startsWith("#/account")) showView(page, () => accountPage(account, setAccount, deleted));
  else if (current !== cameras) showView(cameras);
}

async function passwordChanged() {
  setAccount(await currentSession());
  location.hash = "#/cameras";
  route();
}

function deleted() {
  history.replaceState(null, "", location.pathname);
  signedOut("Your account was deleted.");
}

function setAccount(value) {
  account = value;
  accountName.textContent = value ? value.name || value.email || "" : "";
}

async function onLoggedIn(value) {
  setAccount(value);
  // ORG-2 / manual 5.5.12: a favorite set as the top page opens instead of the camera list.
  if (!location.hash.startsWith("#/camera/")) location.hash = (await startPageHash()) ?? "#/cameras";
  route();
}

function signedOut(message) {
  setAccount(null);
  forgetSession();
  messagesMenu.reset();
  current?.hide();
  current = null;
  cameras.clear(); // the next account must not glimpse this one's cameras
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
  // Opening the bare address with a live session is a login too: the top page applies (ORG-2).
  if (account && !location.hash) {
    const start = await startPageHash();
    if (start) history.replaceState(null, "", start);
  }
  route();
}

window.addEventListener("hashchange", () => route());

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
