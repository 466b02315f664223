"""Viewer authentication: passwords, login lockout, sessions, sign-up and enrollment grants.

- Passwords are argon2id hashes (argon2-cffi); hashing and checking run in a thread.
- Login lockout (USER-3) is counted per lowercased e-mail address whether or not an account
  has it, so the answers for unknown and known addresses are the same; unknown addresses are
  checked against a dummy hash so the time taken does not tell them apart either. Every refused
  attempt (wrong password, unknown address, or made while locked) adds one failure in a single
  statement; from ``login_max_failures`` on, the address is locked for ``login_lockout_base_s``
  doubling per further failure, at most ``login_lockout_max_s``. While locked the password is not
  checked at all. A successful login clears the counter.
- Sessions are random tokens (``secrets.token_urlsafe(32)``); only their sha256 is stored. The
  same token works as the cookie and as ``Authorization: Bearer``. Idle and absolute timeouts
  come from the settings; time comes from the store's clock.
- Enrollment (DEV-10): the subscriber's e-mail and password buy one single-use grant, which a
  device spends together with its Ed25519 public key.
- Lockout is counted BEFORE the password is checked (issue 5 acceptance: of 1 000 concurrent
  wrong logins across relays at most ``login_max_failures`` reach the check): one atomic
  statement adds the attempt and returns the count; an attempt over the limit, or made while
  locked, is refused without checking. A lock that has run out starts a fresh window.
- Every session carries its account's ``session_epoch``; a change made elsewhere (password,
  e-mail, a shared user's rights) moves the epoch on and older sessions end with 50205.
- Sign-up (USER-1) keeps the would-be account behind a mailed single-use link (24 h);
  forgotten passwords (USER-4) are reset with a mailed 8-digit code, 5 tries, 30 minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from relay.errors import ApiError
from relay.notify.mail import Mailer
from relay.passwords import PasswordPolicy, builtin_blocklist
from relay.settings import RelaySettings
from relay.store import AccountRow, DeviceRow, Role, SessionRow, Store
from relay.store.accounts import AccountStore
from relay.store.app_devices import AppDeviceRow, AppDeviceStore, AppLink

NAME_MAX = 32  # USER-1: 400250 above this
DEVICE_NAME_MAX = 64  # the column size; the agent sends its host name by default
EMAIL_MAX = 254
RESET_CODE_DIGITS = 8  # USER-4's verification code; 5 tries of 10^8 codes
PASSWORD_MIN, PASSWORD_MAX = 8, 32  # USER-2
#: USER-2: a password needs one of these symbols (other characters are allowed too).
PASSWORD_SYMBOLS = "@$!%*?&/"  # noqa: S105

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Viewer:
    """Who is calling: the account behind a valid session and how it was presented."""

    account_id: str
    email: str
    name: str
    role: Role
    owner_id: str | None
    csrf_token: str
    token_hash: str
    account: AccountRow | None = None  # the row as read with the session (issue 5 fields)

    @property
    def must_change_password(self) -> bool:
        """USER-6: an invited shared user still on the mailed initial password."""
        return self.account is not None and self.account.must_change_password


@dataclass(frozen=True)
class LoginResult:
    """A new session: the raw token (shown once) and the viewer it authenticates."""

    token: str
    viewer: Viewer
    app_device_id: str | None = None  # USER-9: the app device this login linked


@dataclass(frozen=True)
class Grant:
    """A single-use enrollment grant (raw value shown once)."""

    grant: str
    expires_at: datetime


def token_hash(token: str) -> str:
    """sha256 hex of a session token or grant: the only form the store keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """E-mail addresses are compared trimmed and lowercased."""
    return email.strip().lower()


def validate_email(email: str) -> str:
    """The normalised address, or 91004."""
    email = normalise_email(email)
    if len(email) > EMAIL_MAX or not _EMAIL_RE.match(email):
        raise ApiError.email_invalid()
    return email


def validate_name(name: str) -> str:
    """USER-1: required (400249), at most 32 characters (400250)."""
    name = name.strip()
    if not name:
        raise ApiError.name_required()
    if len(name) > NAME_MAX:
        raise ApiError.name_too_long(NAME_MAX)
    return name


def password_problems(password: str, email: str, policy: PasswordPolicy | None = None) -> list[str]:
    """What a password lacks under USER-2 (the default policy unless one is given)."""
    return (policy or _default_policy()).problems(password, email)


def _default_policy() -> PasswordPolicy:
    """USER-2's rules with the built-in blocklist (for callers without settings)."""
    classes = ("upper", "lower", "digit", "symbol")
    return PasswordPolicy(
        PASSWORD_MIN, PASSWORD_MAX, classes, PASSWORD_SYMBOLS, builtin_blocklist()
    )


def check_password_rules(password: str, email: str, policy: PasswordPolicy | None = None) -> None:
    """Raise 91002 naming every rule the password breaks."""
    problems = password_problems(password, email, policy)
    if problems:
        raise ApiError.password_rules("The password needs " + ", ".join(problems) + ".")


def parse_public_key(text: str) -> str:
    """A raw 32-byte Ed25519 public key given in hex, normalised to lowercase; else 91012."""
    try:
        raw = bytes.fromhex(text.strip())
        Ed25519PublicKey.from_public_bytes(raw)  # ValueError unless exactly 32 bytes
    except ValueError as err:
        raise ApiError.bad_public_key() from err
    return raw.hex()


def make_hasher(settings: RelaySettings) -> PasswordHasher:
    """argon2id with the operator's cost settings."""
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_cost=settings.password_hash_memory_kib,
    )


class Auth:
    """Accounts, logins, sessions and grants over the store."""

    def __init__(
        self,
        settings: RelaySettings,
        store: Store,
        hasher: PasswordHasher | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.accounts = AccountStore(store.engine, clock=store.clock)
        self.app_devices = AppDeviceStore(store.engine, clock=store.clock)
        self.hasher = hasher or make_hasher(settings)
        self.mailer = mailer or Mailer(settings)
        self.policy = PasswordPolicy.from_settings(settings)
        self._dummy_hash: str | None = None
        idle = timedelta(seconds=settings.session_idle_timeout_s)
        self._idle = idle
        self._absolute = timedelta(seconds=settings.session_absolute_timeout_s)
        # Moving last_seen_at on every request would make every read a write.
        self._touch_every = min(timedelta(seconds=60), idle / 10)

    # -- passwords --------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        """argon2id hash, computed in a thread."""
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        """Check a password in a thread; any malformed hash counts as a mismatch."""
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        """A hash of a random password, to spend the same time on unknown addresses."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash_password(secrets.token_urlsafe(16))
        return self._dummy_hash

    def check_password(self, password: str, email: str) -> None:
        """USER-2 under the operator's policy; 91002 naming what is missing."""
        check_password_rules(password, email, self.policy)

    # -- sign-up (USER-1) -------------------------------------------------------------------

    async def sign_up(
        self, email: str, name: str, password: str, *, licence_accepted: bool
    ) -> AccountRow:
        """Create an active subscriber at once: the OPERATOR's path (``rmon-relay account
        create``, tests). Viewers sign up with :meth:`request_signup` and a mailed link."""
        email, name = self._check_signup(email, name, password, licence_accepted)
        account = await self.store.create_account(email, name, await self.hash_password(password))
        if account is None:
            raise ApiError.email_taken()
        return account

    def _check_signup(
        self, email: str, name: str, password: str, licence_accepted: bool
    ) -> tuple[str, str]:
        if not licence_accepted:
            raise ApiError.licence_required()
        email = validate_email(email)
        name = validate_name(name)
        self.check_password(password, email)
        return email, name

    async def request_signup(
        self, email: str, name: str, password: str, *, licence_accepted: bool
    ) -> None:
        """Validate, then mail a confirmation link (valid ``signup_link_ttl_s``); the account
        exists only once the link is used. A registered address is 400229 (USER-1)."""
        email, name = self._check_signup(email, name, password, licence_accepted)
        if await self.store.get_account_by_email(email) is not None:
            raise ApiError.email_taken()
        token = secrets.token_urlsafe(32)
        await self.accounts.create_email_token(
            token_hash(token),
            "signup",
            email=email,
            name=name,
            password_hash=await self.hash_password(password),
            expires_at=self._in(self.settings.signup_link_ttl_s),
        )
        await self.mailer.send(self.mailer.signup_mail(email, name, token))

    async def confirm_signup(self, token: str) -> AccountRow:
        """Use a sign-up link: 91014 when unknown, used or expired; 400229 if taken since."""
        result = await self.accounts.confirm_signup(token_hash(token))
        if result == "invalid":
            raise ApiError.link_invalid()
        if result == "taken":
            raise ApiError.email_taken()
        return result

    def _in(self, seconds: float) -> datetime:
        return self.store.now() + timedelta(seconds=seconds)

    # -- login and lockout ------------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> AccountRow:
        """The account for these credentials, or 400224 / 400225 (USER-3).

        The attempt is counted before anything is checked; past the limit, or while locked,
        the password is not looked at (so its check cannot be raced or timed).
        """
        key = normalise_email(email)[:EMAIL_MAX]
        attempt = await self.accounts.count_login_attempt(key)
        limit = self.settings.login_max_failures
        if attempt.locked_until is not None and attempt.locked_until > self.store.now():
            raise ApiError.locked()
        if attempt.failures > limit:
            await self._lock(key, attempt.failures - limit)
            raise ApiError.locked()
        account = await self.store.get_account_by_email(key) if key else None
        stored = account.password_hash if account is not None else await self._dummy()
        if not await self._verify(stored, password) or account is None:
            if attempt.failures >= limit:
                await self._lock(key, 0)
                raise ApiError.locked()
            raise ApiError.wrong_login()
        await self.store.clear_login_failures(key)
        await self._rehash_if_needed(account, password)
        return account

    async def _lock(self, key: str, excess: int) -> None:
        """Lock ``base`` seconds, doubling per attempt over the limit, at most ``max``."""
        seconds = min(
            self.settings.login_lockout_max_s,
            self.settings.login_lockout_base_s * 2 ** min(excess, 16),
        )
        await self.store.lock_login(key, self._in(seconds))

    async def _rehash_if_needed(self, account: AccountRow, password: str) -> None:
        """Upgrade a hash made with older cost settings, now that we know the password."""
        if self.hasher.check_needs_rehash(account.password_hash):
            await self.store.set_password_hash(account.id, await self.hash_password(password))

    # -- sessions ---------------------------------------------------------------------------

    async def login(self, email: str, password: str, app: AppLink | None = None) -> LoginResult:
        """Check the credentials and open a session (for an app: linked to its device)."""
        account = await self.authenticate(email, password)
        if app is not None:
            return await self._open_app_session(account, app)
        return await self._open_session(account)

    async def _open_app_session(self, account: AccountRow, app: AppLink) -> LoginResult:
        """USER-9: a session and the app device bound to it, written together."""
        token, now = secrets.token_urlsafe(32), self.store.now()
        session = SessionRow(
            token_hash(token),
            account.id,
            secrets.token_urlsafe(32),
            now,
            now,
            account.session_epoch,
        )
        device = await self.app_devices.open_session(session, app)
        viewer = _viewer(account, session.csrf_token, session.token_hash)
        return LoginResult(token, viewer, device.id)

    async def app_devices_of(self, viewer: Viewer) -> list[AppDeviceRow]:
        """USER-9: the viewer's linked apps whose sessions could still make a call."""
        now = self.store.now()
        return await self.app_devices.list_for(
            viewer.account_id, idle_before=now - self._idle, created_before=now - self._absolute
        )

    async def _open_session(self, account: AccountRow) -> LoginResult:
        token = secrets.token_urlsafe(32)
        session = await self.store.create_session(
            token_hash(token), account.id, secrets.token_urlsafe(32), epoch=account.session_epoch
        )
        return LoginResult(token, _viewer(account, session.csrf_token, session.token_hash))

    async def viewer_for_token(self, token: str) -> Viewer:
        """The viewer behind a session token: 50201 when absent, unknown or timed out, 50205
        when a change made elsewhere moved the account's epoch past the session's."""
        if not token or len(token) > 256:
            raise ApiError.session_expired()
        hashed = token_hash(token)
        session, account = await self.live_session(hashed)
        return _viewer(account, session.csrf_token, hashed)

    async def live_session(self, hashed: str) -> tuple[SessionRow, AccountRow]:
        """The session with this token hash and its account, if it is still valid (touched
        now and then); 50201 / 50205 as :meth:`viewer_for_token`. Open streams re-check their
        viewer's session with it, so a logout or a removed app device ends them too."""
        found = await self.store.session_with_account(hashed)
        if found is None:
            raise ApiError.session_expired()
        session, account = found
        if session.epoch < account.session_epoch:
            await self.store.delete_session(hashed)
            raise ApiError.forced_relogin()
        now = self.store.now()
        idle_for = now - session.last_seen_at
        if idle_for >= self._idle or now - session.created_at >= self._absolute:
            await self.store.delete_session(hashed)
            raise ApiError.session_expired()
        if idle_for >= self._touch_every:
            await self.store.touch_session(hashed, now)
        return session, account

    async def logout(self, viewer: Viewer) -> None:
        """End the viewer's session."""
        await self.store.delete_session(viewer.token_hash)

    # -- password and profile changes (USER-4, USER-5) --------------------------------------

    async def _confirm_password(self, viewer: Viewer, password: str, message: str) -> AccountRow:
        """The viewer's account if ``password`` is its password; 400224 with ``message``."""
        account = await self.store.get_account(viewer.account_id)
        if account is None or not await self._verify(account.password_hash, password):
            raise ApiError.wrong_password(message)
        return account

    async def change_password(self, viewer: Viewer, password: str, new_password: str) -> None:
        """USER-5 (and USER-6's first login): this session stays, every other one ends."""
        account = await self._confirm_password(
            viewer, password, "Failed to change the password. The current password is wrong."
        )
        self.check_password(new_password, account.email)
        if new_password == password:
            raise ApiError.password_rules("The new password must differ from the current one.")
        await self.accounts.set_password(
            account.id, await self.hash_password(new_password), keep_session=viewer.token_hash
        )

    async def request_email_change(self, viewer: Viewer, email: str, password: str) -> None:
        """USER-5: mail a confirmation link to the NEW address; nothing changes until used."""
        account = await self._confirm_password(
            viewer, password, "Failed to change the e-mail address. The password is wrong."
        )
        email = validate_email(email)
        if await self.store.get_account_by_email(email) is not None:
            raise ApiError.email_taken()
        token = secrets.token_urlsafe(32)
        await self.accounts.create_email_token(
            token_hash(token),
            "email_change",
            email=email,
            account_id=account.id,
            name=account.name,
            expires_at=self._in(self.settings.signup_link_ttl_s),
        )
        await self.mailer.send(self.mailer.email_change_mail(email, account.name, token))

    async def confirm_email_change(self, token: str) -> None:
        """Use the link: the address changes and every session of the account ends (50205)."""
        result = await self.accounts.confirm_email_change(token_hash(token))
        if result == "invalid":
            raise ApiError.link_invalid()
        if result == "taken":
            raise ApiError.email_taken()

    async def change_name(self, viewer: Viewer, name: str) -> None:
        """USER-5."""
        await self.accounts.set_name(viewer.account_id, validate_name(name))

    async def forgot_password(self, email: str) -> None:
        """USER-4: mail a verification code. Unknown addresses get the same (silent) answer."""
        account = await self.store.get_account_by_email(normalise_email(email)[:EMAIL_MAX])
        if account is None:
            return
        code = "".join(secrets.choice(string.digits) for _ in range(RESET_CODE_DIGITS))
        await self.accounts.put_reset_code(
            account.id, token_hash(code), self._in(self.settings.reset_code_ttl_s)
        )
        await self.mailer.send(self.mailer.reset_mail(account.email, account.name, code))

    async def reset_password(self, email: str, code: str, new_password: str) -> None:
        """USER-4: 400210 expired (or out of tries), 400211 wrong (or nothing pending).

        Every try is counted atomically before the code is compared, so the 5 tries hold
        across relays; success ends every session of the account (50205) and the lockout.
        """
        key = normalise_email(email)[:EMAIL_MAX]
        account = await self.store.get_account_by_email(key) if key else None
        attempt = await self.accounts.count_reset_attempt(account.id) if account else None
        if account is None or attempt is None:
            raise ApiError.code_wrong()
        if attempt.expires_at <= self.store.now():
            raise ApiError.code_expired()
        if attempt.attempts > self.settings.reset_code_max_attempts:
            raise ApiError.code_expired()
        if not hmac.compare_digest(attempt.code_hash, token_hash(code.strip())):
            raise ApiError.code_wrong()
        self.check_password(new_password, account.email)
        await self.accounts.set_password(account.id, await self.hash_password(new_password))
        await self.store.clear_login_failures(key)

    async def deactivate(self, viewer: Viewer, password: str) -> None:
        """USER-10: delete the account and, by cascade, devices, shared users and all data."""
        await self._confirm_password(
            viewer, password, "Failed to cancel the service. Enter the correct password."
        )
        await self.accounts.delete_account(viewer.account_id)

    # -- shared users (USER-6) --------------------------------------------------------------

    async def invite_shared_user(
        self,
        owner: Viewer,
        *,
        email: str,
        name: str,
        group_no: int,
        allow_device_settings: bool,
        privacy_guard: bool,
    ) -> AccountRow:
        """Create a shared user with a random initial password and mail it to them; they
        must change it at the first login. 400229, 400249/400250, 50303."""
        email, name = validate_email(email), validate_name(name)
        if await self.store.get_account_by_email(email) is not None:
            raise ApiError.email_taken()
        password = initial_password()
        result = await self.accounts.create_shared_user(
            owner.account_id,
            email=email,
            name=name,
            password_hash=await self.hash_password(password),
            group_no=group_no,
            allow_device_settings=allow_device_settings,
            privacy_guard=privacy_guard,
            limit=self.settings.max_shared_users,
        )
        if result == "limit":
            raise ApiError.shared_user_limit(self.settings.max_shared_users)
        if result == "taken":
            raise ApiError.email_taken()
        await self.mailer.send(self.mailer.invitation_mail(email, name, owner.name, password))
        return result

    async def delete_shared_user(self, owner: Viewer, user_id: str, password: str) -> None:
        """USER-6: needs the subscriber's password (400224 "Failed to delete the shared user")."""
        await self._confirm_password(
            owner,
            password,
            "Failed to delete the shared user. Enter the correct password of the contract holder.",
        )
        if not await self.accounts.delete_account(user_id, owner_id=owner.account_id):
            raise ApiError.not_found("user")

    # -- enrollment (DEV-10) ----------------------------------------------------------------

    async def issue_grant(self, email: str, password: str) -> Grant:
        """Trade the subscriber's credentials (lockout applies) for a single-use grant."""
        account = await self.authenticate(email, password)
        if account.role != "subscriber":
            raise ApiError.forbidden("Only the subscriber can register sites.")
        grant = secrets.token_urlsafe(32)
        expires_at = self.store.now() + timedelta(seconds=self.settings.enrollment_grant_ttl_s)
        await self.store.create_grant(token_hash(grant), account.id, expires_at)
        return Grant(grant, expires_at)

    async def enroll_device(
        self, grant: str, public_key: str, name: str, agent_version: str
    ) -> DeviceRow:
        """Spend a grant on a new device; 91009 unknown, 91010 used, 91011 expired."""
        key_hex = parse_public_key(public_key)
        hashed = token_hash(grant)
        device = await self.store.enroll_device(
            hashed,
            name=name.strip()[:DEVICE_NAME_MAX] or "Site",
            public_key=key_hex,
            agent_version=agent_version.strip()[:64],
        )
        if device is not None:
            return device
        state = await self.store.grant_state(hashed)
        if state is None:
            raise ApiError.grant_invalid()
        if state.used_at is not None:
            raise ApiError.grant_used()
        raise ApiError.grant_expired()


def initial_password() -> str:
    """A random initial password that passes USER-2 (one of each class, 16 characters)."""
    alphabet = string.ascii_letters + string.digits
    picks = [
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.digits),
        secrets.choice(PASSWORD_SYMBOLS),
        *(secrets.choice(alphabet) for _ in range(12)),
    ]
    secrets.SystemRandom().shuffle(picks)
    return "".join(picks)


def _viewer(account: AccountRow, csrf_token: str, hashed: str) -> Viewer:
    """A Viewer from an account and its session."""
    return Viewer(
        account_id=account.id,
        email=account.email,
        name=account.name,
        role=account.role,
        owner_id=account.owner_id,
        csrf_token=csrf_token,
        token_hash=hashed,
        account=account,
    )
