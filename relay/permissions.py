"""USER-8's permissions and the four permission groups a subscriber edits.

Eight permissions; ``live`` is always on; ``device_management`` and ``user_management`` belong
to the subscriber alone and can never be granted to a shared user (a group that asks for them
is refused, and :func:`effective` drops them whatever the store holds). A shared user belongs
to exactly one of their subscriber's four groups; USER-6's "allow device settings" flag adds
``camera_settings`` on the cameras shared with them.

USER-6's privacy-guard flag splits a subscriber's cameras for shared users (manual 4.3.2): a
user with it ON may only see cameras whose picture has AI privacy guard applied (the agent
reports the capability ``privacy_guard``), a user with it OFF only the others. :func:`privacy_fits`
is the one test, used when sharing and again on every access.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    """What a viewer may do with a camera (names as in the API)."""

    LIVE = "live"
    PLAYBACK = "playback"
    DOWNLOAD = "download"
    CAMERA_CONTROL = "camera_control"
    EVENT_SEARCH = "event_search"
    CAMERA_SETTINGS = "camera_settings"
    DEVICE_MANAGEMENT = "device_management"
    USER_MANAGEMENT = "user_management"


ALL = frozenset(Permission)
#: Never granted to shared users (USER-8; manual 4.3 "cannot be granted to shared users").
SUBSCRIBER_ONLY = frozenset({Permission.DEVICE_MANAGEMENT, Permission.USER_MANAGEMENT})
GRANTABLE = ALL - SUBSCRIBER_ONLY
GROUP_NUMBERS = (1, 2, 3, 4)
GROUP_NAME_MAX = 32
#: The camera capability the agent reports for a camera with AI privacy guard applied.
PRIVACY_GUARD = "privacy_guard"


def privacy_fits(user_privacy_guard: bool, camera_capabilities: tuple[str, ...]) -> bool:
    """Whether a shared user with this privacy-guard flag may see a camera with these
    capabilities (subscribers see all their cameras and never call this)."""
    return user_privacy_guard == (PRIVACY_GUARD in camera_capabilities)


@dataclass(frozen=True)
class Group:
    """One permission group of a subscriber."""

    number: int
    name: str
    permissions: frozenset[Permission]


#: What a new subscriber starts with (the manual's screen calls them Permission…Permission4);
#: from "everything a shared user can have" down to "live only".
DEFAULT_GROUPS = (
    Group(1, "Permission", GRANTABLE),
    Group(2, "Permission2", frozenset({Permission.LIVE, Permission.PLAYBACK, Permission.DOWNLOAD})),
    Group(3, "Permission3", frozenset({Permission.LIVE, Permission.PLAYBACK})),
    Group(4, "Permission4", frozenset({Permission.LIVE})),
)


def parse(names: list[str] | tuple[str, ...]) -> frozenset[Permission]:
    """Permission names to a set; unknown names raise ValueError."""
    return frozenset(Permission(name) for name in names)


def effective(
    group: frozenset[Permission] | None, *, allow_device_settings: bool = False
) -> frozenset[Permission]:
    """A shared user's permissions on a shared camera: the group's, live always, never the
    subscriber-only two."""
    granted = set(group or ()) | {Permission.LIVE}
    if allow_device_settings:
        granted.add(Permission.CAMERA_SETTINGS)
    return frozenset(granted) - SUBSCRIBER_ONLY
