// The documented message for each error code (manual 7.2 wording where it has one), so every
// screen shows the same words for the same refusal. Unknown codes fall back to the server's.

const MESSAGES = {
  500: "Sorry for your inconvenience. Please wait for a while and retry again.",
  50201: "The auto logout will be performed due to the session timeout.",
  50205: "The settings were changed from another browser. Please log in again.",
  50303:
    "Reached the maximum number of shared users that can be created. Create a new user after " +
    "deleting an unused user on the user management screen.",
  400210:
    "The verification code has expired. Initialize the password again to get a new " +
    "verification code.",
  400211: "Password reset failed. The verification code is wrong.",
  400224: "The e-mail address or the password is incorrect.",
  400225: "Failed to log in multiple times. Please retry after a while.",
  400229: "Your account is already registered.",
  400249: "Cannot register since no name is specified.",
  400250: "Register with a name of up to 32 characters.",
  91003: "Please accept the licence agreement.",
  91004: "Please enter a valid email address.",
  91013: "A camera can be shared with at most 10 users.",
  91014: "This link is invalid or has expired. Please start again.",
  91015: "Please change the initial password before using the service.",
  91016:
    "This camera cannot be shared with this user: users with AI Privacy Guard ON can only be " +
    "shared cameras with privacy guard applied, and users with it OFF only the others.",
  91150: "This message does not exist.", // MSG-1: an unknown message id
  // ORG-1 / ORG-2 (manual 4.4, 5.5.1, 5.5.2, 5.5.5): the manual's sentences for each limit.
  91101: "Folders can be created up to 3 levels deep.",
  91102: "Up to 100 folders can be linked to one folder.",
  91103: "You can create up to 50 favorite groups.",
  91104: "You cannot register multiple identical cameras to the same favorite.",
  91105:
    "You can't add more than the maximum number. For example, if you want to add a camera to " +
    "a \"4-split\" layout, change the layout to \"9-split\", \"Custom\", etc.",
};

// Screens where the manual words a code differently (context → code → message).
const CONTEXT = {
  deleteUser: {
    400224: "Failed to delete the shared user. Enter the correct password of the contract holder.",
  },
  newUser: {
    400229: "The specified user is already registered.",
    400249: "Failed to register the shared user. Cannot register since no name is specified.",
    400250: "Failed to register the shared user. Register with a name of up to 32 characters.",
  },
  changePassword: { 400224: "Failed to change the password. The current password is wrong." },
  // Manual 7.2 "Favorites": what a network failure says while loading or saving a group.
  favoritesLoad: {
    0: "Failed to obtain favorite information. Check if the device in use is connected to the network.",
  },
  favoritesSave: {
    0: "Failed to save favorite information. Check if the device in use is connected to the network.",
  },
};

/** What to show for an ApiError (or anything thrown) on a given screen. */
export function messageFor(err, context = "") {
  const code = err?.code ?? 0;
  // status 0: the server was never reached (ApiError from a failed fetch).
  const offline = err?.status === 0 ? CONTEXT[context]?.[0] : undefined;
  if (offline) return offline;
  // 91002 (password rules) names what is missing: the server's text is the useful one.
  const text = CONTEXT[context]?.[code] ?? (code === 91002 ? null : MESSAGES[code]);
  const base = text ?? err?.message ?? String(err);
  return code ? `${base} (error ${code})` : base;
}
