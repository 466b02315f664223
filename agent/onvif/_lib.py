"""onvif-zeep-async, imported without its side effect on the process's logging.

``onvif.client`` calls ``logging.basicConfig(level=INFO)`` at import time (4.3.0), which would add a
root handler and raise the root level under whatever the agent configured. Importing it through
here restores both. Only ``agent/onvif/client.py`` uses this module.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from agent.onvif._limits import bounded_client_session, harden_settings


def _import_quietly() -> tuple[ModuleType, ModuleType]:
    """Import ``onvif`` and ``onvif.exceptions`` and undo the root-logger changes they make."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import onvif
        import onvif.exceptions
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return onvif, onvif.exceptions


_onvif, _exceptions = _import_quietly()
# The library shares one zeep Settings object between all its clients: hostile-SOAP limits
# (see agent/onvif/_limits.py) set here apply to every call through the boundary.
harden_settings(importlib.import_module("onvif.settings").DEFAULT_SETTINGS)
setattr(importlib.import_module("onvif.client"), "ClientSession", bounded_client_session)  # noqa: B010

ONVIFCamera = _onvif.ONVIFCamera
ONVIFError = _exceptions.ONVIFError
ONVIFAuthError = _exceptions.ONVIFAuthError
ONVIFTimeoutError = _exceptions.ONVIFTimeoutError
