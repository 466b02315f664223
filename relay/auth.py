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
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from relay.errors import ApiError
from relay.settings import RelaySettings
from relay.store import AccountRow, DeviceRow, Role, Store

NAME_MAX = 32  # USER-1: 400250 above this
DEVICE_NAME_MAX = 64  # the column size; the agent sends its host name by default
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 32  # USER-2
#: USER-2: a password needs one of these symbols (other characters are allowed too).
PASSWORD_SYMBOLS = "@$!%*?&/"  # noqa: S105
EMAIL_PART_MIN = 3  # a local part this long or longer must not appear in the password

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


@dataclass(frozen=True)
class LoginResult:
    """A new session: the raw token (shown once) and the viewer it authenticates."""

    token: str
    viewer: Viewer


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


def password_problems(password: str, email: str) -> list[str]:
    """What a password lacks under USER-2 (empty when it is acceptable)."""
    problems = []
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        problems.append(f"{PASSWORD_MIN} to {PASSWORD_MAX} characters")
    for pattern, what in (
        (r"[A-Z]", "an upper-case letter"),
        (r"[a-z]", "a lower-case letter"),
        (r"[0-9]", "a digit"),
        ("[" + re.escape(PASSWORD_SYMBOLS) + "]", f"a symbol from {' '.join(PASSWORD_SYMBOLS)}"),
    ):
        if not re.search(pattern, password):
            problems.append(what)
    if _contains_email(password, email):
        problems.append("not containing the e-mail address")
    return problems


def _contains_email(password: str, email: str) -> bool:
    """The address, or its local part, inside the password (case-insensitive)."""
    lowered, email = password.lower(), normalise_email(email)
    local = email.partition("@")[0]
    return bool(email) and (email in lowered or (len(local) >= EMAIL_PART_MIN and local in lowered))


def check_password_rules(password: str, email: str) -> None:
    """Raise 91002 naming every rule the password breaks."""
    problems = password_problems(password, email)
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
        self, settings: RelaySettings, store: Store, hasher: PasswordHasher | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.hasher = hasher or make_hasher(settings)
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

    # -- sign-up ----------------------------------------------------------------------------

    async def sign_up(
        self, email: str, name: str, password: str, *, licence_accepted: bool
    ) -> AccountRow:
        """Create a subscriber (USER-1, USER-2).

        The account is active at once: the e-mail confirmation link of USER-1 is later work.
        """
        if not licence_accepted:
            raise ApiError.licence_required()
        email = validate_email(email)
        name = validate_name(name)
        check_password_rules(password, email)
        account = await self.store.create_account(email, name, await self.hash_password(password))
        if account is None:
            raise ApiError.email_taken()
        return account

    # -- login and lockout ------------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> AccountRow:
        """The account for these credentials, or 400224 / 400225 (USER-3)."""
        key = normalise_email(email)[:EMAIL_MAX]
        lock = await self.store.login_lock(key)
        if lock and lock.locked_until and lock.locked_until > self.store.now():
            await self._failed(key)  # counted, but the password is not checked while locked
            raise ApiError.locked()
        account = await self.store.get_account_by_email(key) if key else None
        stored = account.password_hash if account is not None else await self._dummy()
        if not await self._verify(stored, password) or account is None:
            if await self._failed(key):
                raise ApiError.locked()
            raise ApiError.wrong_login()
        await self.store.clear_login_failures(key)
        await self._rehash_if_needed(account, password)
        return account

    async def _failed(self, key: str) -> bool:
        """Count a failure; lock the key once over the limit. True when it is now locked."""
        failures = await self.store.record_login_failure(key)
        excess = failures - self.settings.login_max_failures
        if excess < 0:
            return False
        seconds = min(
            self.settings.login_lockout_max_s,
            self.settings.login_lockout_base_s * 2 ** min(excess, 16),
        )
        await self.store.lock_login(key, self.store.now() + timedelta(seconds=seconds))
        return True

    async def _rehash_if_needed(self, account: AccountRow, password: str) -> None:
        """Upgrade a hash made with older cost settings, now that we know the password."""
        if self.hasher.check_needs_rehash(account.password_hash):
            await self.store.set_password_hash(account.id, await self.hash_password(password))

    # -- sessions ---------------------------------------------------------------------------

    async def login(self, email: str, password: str) -> LoginResult:
        """Check the credentials and open a session."""
        account = await self.authenticate(email, password)
        token = secrets.token_urlsafe(32)
        session = await self.store.create_session(
            token_hash(token), account.id, secrets.token_urlsafe(32)
        )
        return LoginResult(token, _viewer(account, session.csrf_token, session.token_hash))

    async def viewer_for_token(self, token: str) -> Viewer:
        """The viewer behind a session token, or 50201 when absent, unknown or timed out."""
        if not token or len(token) > 256:
            raise ApiError.session_expired()
        hashed = token_hash(token)
        found = await self.store.session_with_account(hashed)
        if found is None:
            raise ApiError.session_expired()
        session, account = found
        now = self.store.now()
        idle_for = now - session.last_seen_at
        if idle_for >= self._idle or now - session.created_at >= self._absolute:
            await self.store.delete_session(hashed)
            raise ApiError.session_expired()
        if idle_for >= self._touch_every:
            await self.store.touch_session(hashed, now)
        return _viewer(account, session.csrf_token, hashed)

    async def logout(self, viewer: Viewer) -> None:
        """End the viewer's session."""
        await self.store.delete_session(viewer.token_hash)

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
    )
