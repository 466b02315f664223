"""Errors of the ONVIF boundary: no zeep, aiohttp or lxml exception leaves ``agent/onvif/``.

Every third-party exception is wrapped here (``raise … from err``) into one of::

    OnvifError              anything that went wrong talking to a camera
    ├── OnvifUnreachable    no usable answer: refused, reset, no route, timed out, HTTP 503
    │   └── OnvifOutcomeUnknown  the answer to a non-idempotent request (SystemReboot) was lost
    ├── OnvifAuthError      credentials refused: HTTP 401/403, SOAP "Sender not authorized"
    ├── OnvifUnsupported    the device lacks the operation or service ("Action not supported")
    └── OnvifProtocolError  an answer we cannot use: malformed XML, other faults, bad status

Messages name the address and what failed, never a password (see ``redact``).
"""

from __future__ import annotations

import re

_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


class OnvifError(Exception):
    """Talking to a camera over ONVIF (or its HTTP snapshot) failed."""


class OnvifUnreachable(OnvifError):
    """The camera did not answer in time or refused the connection; worth trying later."""


class OnvifOutcomeUnknown(OnvifUnreachable):
    """The request went out but its answer never came: the camera may have carried it out
    (a rebooting camera drops the connection). Never retried."""


class OnvifAuthError(OnvifError):
    """The camera refused the credentials; retrying with the same ones will not help."""


class OnvifUnsupported(OnvifError):
    """The camera does not offer this operation or service."""


class OnvifProtocolError(OnvifError):
    """The camera answered something we cannot interpret."""


def redact(text: str, *secrets: str) -> str:
    """``text`` with URL user-info and the given secrets replaced, safe for messages and logs."""
    text = _USERINFO_RE.sub(r"\g<scheme>***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
