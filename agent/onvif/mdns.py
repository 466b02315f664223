"""mDNS (zeroconf) browsing for cameras that advertise themselves there rather than (only) over
WS-Discovery: Axis (``_axis-video._tcp``), cameras announcing ``_onvif._tcp`` or ``_rtsp._tcp``.

mDNS gives an address, not an ONVIF XAddr, so each host found is handed to ``on_host`` and the
agent asks it directly with a unicast WS-Discovery Probe: the camera's own ProbeMatch then gives
the XAddr and the endpoint reference, and deduplication works as for multicast answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

MDNS_TYPES = ("_onvif._tcp.local.", "_rtsp._tcp.local.", "_axis-video._tcp.local.")
RESOLVE_TIMEOUT_MS = 3000


class MdnsBrowser:
    """Browses the camera service types; calls ``on_host(ipv4)`` for each host that appears."""

    def __init__(
        self,
        on_host: Callable[[str], None],
        interfaces: Sequence[str] = (),
        types: Sequence[str] = MDNS_TYPES,
    ) -> None:
        self._on_host = on_host
        self._interfaces = list(interfaces)
        self._types = list(types)
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Join mDNS on the interfaces (all when none are given) and start browsing."""
        choice = self._interfaces or InterfaceChoice.All
        self._zc = AsyncZeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, self._types, handlers=[self._on_change]
        )

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        """A service appeared or changed: resolve its addresses (in an owned task)."""
        if state_change in {ServiceStateChange.Added, ServiceStateChange.Updated}:
            task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        """The service's IPv4 addresses, each handed to ``on_host``."""
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
            log.debug("mDNS: %s did not resolve", name)
            return
        for address in info.parsed_addresses(IPVersion.V4Only):
            log.debug("mDNS: %s at %s", name, address)
            self._on_host(address)

    async def close(self) -> None:
        """Stop browsing and leave mDNS."""
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_close()
        self._browser = self._zc = None
