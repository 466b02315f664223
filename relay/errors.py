"""API errors: one exception type, the codes it carries, and the middleware that renders them.

Tree::

    Exception
    └── ApiError(status, code, message)      every refusal the API answers with a JSON body
                                             {"error": {"code": N, "message": "…"}}

Codes come from the reference manual's error table (section 7.2) where one fits; where the table
has no code for a failure, rmon uses its own in the 91xxx range (the tunnel's own codes are 90xxx,
see ``shared/tunnel/codes.py``). The manual's table was searched for a password-rule, a
permission, a not-found and a CSRF code and has none: those are the 91xxx codes below.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import IntEnum

from aiohttp import web

log = logging.getLogger(__name__)


class Code(IntEnum):
    """Error codes in API bodies, each with where it comes from."""

    SYSTEM_ERROR = 500  # manual 7.2 "Common to each screen": System error
    DEVICE_OFFLINE = 50115  # manual 7.2: "Failed to connect to the camera" (network error)
    SESSION_EXPIRED = 50201  # manual 7.2: auto logout due to session timeout (USER-3)
    FORCED_RELOGIN = 50205  # manual 7.2: settings changed elsewhere, log in again (USER-3)
    SHARED_USER_LIMIT = 50303  # manual 7.2 User management: 500007/50303 upper limit (USER-6)
    CODE_EXPIRED = 400210  # manual 7.2 Initialize password: verification code expired (USER-4)
    CODE_WRONG = 400211  # manual 7.2 Initialize password: verification code wrong (USER-4)
    WRONG_LOGIN = 400224  # manual 7.2 Login: e-mail address or password incorrect (USER-3)
    LOCKED = 400225  # manual 7.2 Login: failed several times, retry later (USER-3)
    EMAIL_TAKEN = 400229  # manual 7.2 New register: already registered (USER-1)
    NAME_REQUIRED = 400249  # manual 7.2 New register: specify your name (USER-1)
    NAME_TOO_LONG = 400250  # manual 7.2 New register: name up to 32 characters (USER-1)
    # rmon's own codes: the manual has none for these.
    BAD_REQUEST = 91001  # malformed JSON or a field of the wrong type
    PASSWORD_RULES = 91002  # USER-2: the password breaks the rules
    LICENCE_REQUIRED = 91003  # USER-1: the licence agreement was not accepted
    EMAIL_INVALID = 91004  # not an e-mail address
    CSRF = 91005  # cookie-authenticated change without the session's X-CSRF-Token
    FORBIDDEN = 91006  # authenticated but not allowed
    NOT_FOUND = 91007  # no such object (or not visible to this viewer) or no such route
    METHOD_NOT_ALLOWED = 91008  # the route exists, the method does not
    GRANT_INVALID = 91009  # DEV-10: unknown enrollment grant
    GRANT_USED = 91010  # DEV-10: the grant was already used (single use)
    GRANT_EXPIRED = 91011  # DEV-10: the grant's lifetime is over
    BAD_PUBLIC_KEY = 91012  # DEV-10: not a raw 32-byte Ed25519 public key in hex
    SHARE_LIMIT = 91013  # CAM-2: a camera is shared with at most 10 users
    LINK_INVALID = 91014  # USER-1/USER-5: confirmation link unknown, used or expired
    PASSWORD_CHANGE_REQUIRED = 91015  # USER-6: the initial password must be changed first
    PRIVACY_GUARD_MISMATCH = 91016  # USER-6: camera does not fit the user's privacy-guard flag
    # ORG-1/ORG-2 (folders, favorites): the manual states these limits but gives them no code;
    # a block of their own (91101…) so parallel work on other areas cannot collide with it.
    FOLDER_DEPTH = 91101  # ORG-1: folders are at most 3 levels deep
    FOLDER_LIMIT = 91102  # ORG-1: at most 100 sub-folders in one folder (or at the top level)
    FAVORITE_LIMIT = 91103  # ORG-2: at most 50 favorite groups per viewer
    FAVORITE_DUPLICATE = 91104  # ORG-2: a camera at most once per favorite group
    LAYOUT_FULL = 91105  # ORG-2: more cameras than the group's layout holds (manual 5.5.5)
    # MSG-1 (operator announcements): its own block (91150…), clear of ORG's.
    MESSAGE_NOT_FOUND = 91150  # MSG-1: no message with this id


class ApiError(Exception):
    """A refusal with an HTTP status and a code from :class:`Code` (or a peer's code)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = int(code)
        self.message = message

    def body(self) -> dict[str, dict[str, int | str]]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        """400 / 91001: the request is malformed."""
        return cls(400, Code.BAD_REQUEST, message)

    @classmethod
    def wrong_login(cls) -> ApiError:
        """401 / 400224: the same answer for an unknown e-mail and a wrong password."""
        return cls(401, Code.WRONG_LOGIN, "The email address or the password is incorrect.")

    @classmethod
    def locked(cls) -> ApiError:
        """429 / 400225: too many failed logins for this e-mail address."""
        return cls(429, Code.LOCKED, "Failed to log in multiple times. Please retry after a while.")

    @classmethod
    def session_expired(cls) -> ApiError:
        """401 / 50201: no session, or it timed out."""
        return cls(401, Code.SESSION_EXPIRED, "The session has timed out. Please log in again.")

    @classmethod
    def email_taken(cls) -> ApiError:
        """409 / 400229: sign-up with an e-mail address that has an account."""
        return cls(409, Code.EMAIL_TAKEN, "Your account is already registered.")

    @classmethod
    def name_required(cls) -> ApiError:
        """400 / 400249."""
        return cls(400, Code.NAME_REQUIRED, "Please specify your name.")

    @classmethod
    def name_too_long(cls, limit: int) -> ApiError:
        """400 / 400250."""
        return cls(400, Code.NAME_TOO_LONG, f"Please register within {limit} characters.")

    @classmethod
    def password_rules(cls, message: str) -> ApiError:
        """400 / 91002: USER-2."""
        return cls(400, Code.PASSWORD_RULES, message)

    @classmethod
    def licence_required(cls) -> ApiError:
        """400 / 91003."""
        return cls(400, Code.LICENCE_REQUIRED, "Please accept the licence agreement.")

    @classmethod
    def email_invalid(cls) -> ApiError:
        """400 / 91004."""
        return cls(400, Code.EMAIL_INVALID, "Please enter a valid email address.")

    @classmethod
    def csrf(cls) -> ApiError:
        """403 / 91005: a cookie-authenticated change needs the X-CSRF-Token header."""
        return cls(403, Code.CSRF, "Missing or wrong X-CSRF-Token header.")

    @classmethod
    def forbidden(cls, message: str = "You are not allowed to do this.") -> ApiError:
        """403 / 91006."""
        return cls(403, Code.FORBIDDEN, message)

    @classmethod
    def not_found(cls, what: str = "object") -> ApiError:
        """404 / 91007: also for objects that exist but the viewer may not see."""
        return cls(404, Code.NOT_FOUND, f"No such {what}.")

    @classmethod
    def device_offline(cls) -> ApiError:
        """503 / 50115: the site's agent holds no tunnel."""
        return cls(503, Code.DEVICE_OFFLINE, "Failed to connect to the camera. Reload to retry.")

    @classmethod
    def forced_relogin(cls) -> ApiError:
        """401 / 50205: a change made elsewhere (password, e-mail, rights) ended the session."""
        return cls(
            401,
            Code.FORCED_RELOGIN,
            "The settings were changed from another browser. Please log in again.",
        )

    @classmethod
    def shared_user_limit(cls, limit: int) -> ApiError:
        """409 / 50303: USER-6."""
        return cls(
            409,
            Code.SHARED_USER_LIMIT,
            f"Reached the maximum number of shared users that can be created ({limit}). "
            "Create a new user after deleting an unused user on the user management screen.",
        )

    @classmethod
    def code_expired(cls) -> ApiError:
        """400 / 400210: USER-4."""
        return cls(
            400,
            Code.CODE_EXPIRED,
            "The verification code has expired. Initialize the password again to get a new "
            "verification code.",
        )

    @classmethod
    def code_wrong(cls) -> ApiError:
        """400 / 400211: USER-4 (also for an address with no reset pending)."""
        return cls(400, Code.CODE_WRONG, "Password reset failed. The verification code is wrong.")

    @classmethod
    def wrong_password(cls, message: str) -> ApiError:
        """403 / 400224: a confirmation password (delete a user, deactivate) is wrong."""
        return cls(403, Code.WRONG_LOGIN, message)

    @classmethod
    def share_limit(cls, limit: int) -> ApiError:
        """409 / 91013: CAM-2."""
        return cls(409, Code.SHARE_LIMIT, f"A camera can be shared with at most {limit} users.")

    @classmethod
    def privacy_guard_mismatch(cls, user_privacy_guard: bool) -> ApiError:
        """409 / 91016: USER-6, a camera that does not fit the user's privacy-guard flag."""
        wanted = "with" if user_privacy_guard else "without"
        return cls(
            409,
            Code.PRIVACY_GUARD_MISMATCH,
            f"This user has AI privacy guard {'ON' if user_privacy_guard else 'OFF'}: only "
            f"cameras {wanted} privacy guard applied can be shared with them.",
        )

    @classmethod
    def link_invalid(cls) -> ApiError:
        """400 / 91014: a sign-up or e-mail confirmation link that cannot be used (any reason)."""
        return cls(
            400, Code.LINK_INVALID, "This link is invalid or has expired. Please start again."
        )

    @classmethod
    def password_change_required(cls) -> ApiError:
        """403 / 91015: USER-6, first login with the initial password."""
        return cls(
            403,
            Code.PASSWORD_CHANGE_REQUIRED,
            "Please change the initial password before using the service.",
        )

    @classmethod
    def org_limit(cls, code: Code, message: str) -> ApiError:
        """400 (depth, layout) or 409 (count, duplicate) with one of the ORG codes 91101…."""
        status = 400 if code in (Code.FOLDER_DEPTH, Code.LAYOUT_FULL) else 409
        return cls(status, code, message)

    @classmethod
    def message_not_found(cls) -> ApiError:
        """404 / 91150: MSG-1, an unknown message id."""
        return cls(404, Code.MESSAGE_NOT_FOUND, "No such message.")

    @classmethod
    def grant_invalid(cls) -> ApiError:
        """400 / 91009."""
        return cls(400, Code.GRANT_INVALID, "Unknown enrollment grant.")

    @classmethod
    def grant_used(cls) -> ApiError:
        """409 / 91010."""
        return cls(409, Code.GRANT_USED, "This enrollment grant was already used.")

    @classmethod
    def grant_expired(cls) -> ApiError:
        """400 / 91011."""
        return cls(400, Code.GRANT_EXPIRED, "This enrollment grant has expired; register again.")

    @classmethod
    def bad_public_key(cls) -> ApiError:
        """400 / 91012."""
        return cls(400, Code.BAD_PUBLIC_KEY, "public_key must be a 32-byte Ed25519 key in hex.")


def _from_http(err: web.HTTPException) -> ApiError:
    """aiohttp's own 4xx (no route, wrong method, body too large) in our error shape."""
    if err.status == 404:
        return ApiError(404, Code.NOT_FOUND, "No such route.")
    if err.status == 405:
        return ApiError(405, Code.METHOD_NOT_ALLOWED, "Method not allowed on this route.")
    return ApiError(err.status, Code.BAD_REQUEST, err.reason)


async def _allowed_methods(request: web.Request) -> str:
    """The methods of the path pattern routing prefers, for a 405's ``Allow``.

    aiohttp's own header unites every matching pattern, so ``/favorites/order`` (POST) would
    also advertise ``/favorites/{group_id}``'s methods. Routing tries the pattern with the
    longest literal prefix first (``UrlDispatcher.resolve``), so that one is the resource; one
    pattern may be registered more than once (by different areas).
    """
    matches: list[tuple[int, str, set[str]]] = []
    for resource in request.app.router.resources():
        _, allowed = await resource.resolve(request)
        if allowed:
            literal = resource.canonical.partition("{")[0]
            matches.append((-len(literal), resource.canonical, allowed))
    if not matches:
        return ""
    _, pattern, _ = min(matches, key=lambda match: match[0])
    methods = set().union(*(allowed for _, canonical, allowed in matches if canonical == pattern))
    return ",".join(sorted(methods))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ApiError (and aiohttp's 4xx under /api/) as the JSON body; hide crashes as 500."""
    try:
        return await handler(request)
    except ApiError as err:
        return web.json_response(err.body(), status=err.status)
    except web.HTTPException as err:
        if err.status < 400 or not request.path.startswith("/api/"):
            raise
        api_err = _from_http(err)
        response = web.json_response(api_err.body(), status=api_err.status)
        if err.status == 405:  # RFC 9110 §15.5.6: a 405 lists the resource's methods
            response.headers["Allow"] = await _allowed_methods(request)
        return response
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        body = {"error": {"code": int(Code.SYSTEM_ERROR), "message": "System error."}}
        return web.json_response(body, status=500)
