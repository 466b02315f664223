"""USER-2's password rules as a configurable policy, plus a blocklist of common passwords.

The operator sets the lengths, the character classes and the symbols (``RMON_RELAY_PASSWORD_*``);
the defaults are the manual's: 8-32 characters with upper case, lower case, a digit and one of
``@ $ ! % * ? & /``, never containing the e-mail address. The blocklist (``relay/data/
common_passwords.txt`` plus an optional operator file) refuses passwords that are a common
word dressed up to pass the class rules ("Password1!", "P@ssw0rd2024", "Welcome!1"): the check
looks at the password's core, with digits and symbols stripped from both ends and the usual
letter substitutions undone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from relay.settings import RelaySettings

BUILTIN_BLOCKLIST = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
EMAIL_PART_MIN = 3  # a local part this long or longer must not appear in the password
_LEET = str.maketrans("0134579@$!|", "oieastgasil")
_CLASSES = {
    "upper": (r"[A-Z]", "an upper-case letter"),
    "lower": (r"[a-z]", "a lower-case letter"),
    "digit": (r"[0-9]", "a digit"),
}


@cache
def _read_list(path: Path) -> frozenset[str]:
    """Lowercased entries of a blocklist file (comments and blank lines skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


def builtin_blocklist() -> frozenset[str]:
    """The blocklist shipped with the relay."""
    return _read_list(BUILTIN_BLOCKLIST)


@dataclass(frozen=True)
class PasswordPolicy:
    """The rules a new password must follow."""

    min_length: int
    max_length: int
    classes: tuple[str, ...]
    symbols: str
    blocklist: frozenset[str]

    @classmethod
    def from_settings(cls, settings: RelaySettings) -> PasswordPolicy:
        """The operator's policy, with the built-in and the operator's blocklists."""
        words = _read_list(BUILTIN_BLOCKLIST)
        if settings.password_blocklist_file is not None:
            words |= _read_list(settings.password_blocklist_file)
        return cls(
            min_length=settings.password_min_length,
            max_length=settings.password_max_length,
            classes=tuple(settings.password_required_classes),
            symbols=settings.password_symbols,
            blocklist=words,
        )

    def problems(self, password: str, email: str) -> list[str]:
        """What the password lacks (empty when it is acceptable)."""
        found = []
        if not self.min_length <= len(password) <= self.max_length:
            found.append(f"{self.min_length} to {self.max_length} characters")
        for name in self.classes:
            if name == "symbol":
                pattern, what = (
                    "[" + re.escape(self.symbols) + "]",
                    "a symbol from " + " ".join(self.symbols),
                )
            else:
                pattern, what = _CLASSES[name]
            if not re.search(pattern, password):
                found.append(what)
        if contains_email(password, email):
            found.append("not containing the e-mail address")
        if self.is_common(password):
            found.append("not being a common password or word")
        return found

    def is_common(self, password: str) -> bool:
        """The password or its core is on the blocklist."""
        lowered = password.lower()
        core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
        candidates = {lowered, core, lowered.translate(_LEET), core.translate(_LEET)}
        candidates |= {re.sub(r"^[\W\d_]+|[\W\d_]+$", "", c) for c in list(candidates)}
        return any(c in self.blocklist for c in candidates if c)


def contains_email(password: str, email: str) -> bool:
    """The address, or its local part, inside the password (case-insensitive)."""
    lowered, email = password.lower(), email.strip().lower()
    local = email.partition("@")[0]
    return bool(email) and (email in lowered or (len(local) >= EMAIL_PART_MIN and local in lowered))
