"""Running a relay: HTTPS (aiohttp) and QUIC (agents) on the same port number.

With port 0 the TCP listener picks a free port and the QUIC listener takes the same number on
UDP; if that UDP port happens to be taken, both are bound again on a fresh port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl

from aiohttp import web

from relay.app import create_app
from relay.settings import RelaySettings
from relay.store import Clock, Store, open_store, utc_now
from relay.tls import TlsFiles, ensure_tls
from relay.tunnel import fallback
from relay.tunnel.broker import Broker
from relay.tunnel.listener import TunnelListener
from relay.web.keys import BROKER_KEY, COMMANDS_KEY

log = logging.getLogger(__name__)

BIND_ATTEMPTS = 5


def _ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """TLS for the portal and API (TLS 1.2+, the generated or operator's certificate)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


class RelayServer:
    """The relay's listeners and the objects they share."""

    def __init__(self, settings: RelaySettings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock  # the store's time (tests pass a fake one to pass timeouts)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._store: Store | None = None
        self.listener: TunnelListener | None = None

    async def start(self) -> int:
        """Open the store, make TLS material, bind HTTPS and QUIC; return the port."""
        settings = self.settings
        tls = ensure_tls(settings.tls_dir, _cert_hosts(settings))
        self._store = store = await open_store(settings.db_url, clock=self.clock)
        self.listener = TunnelListener(settings, store, tls)
        app = create_app(settings, store)
        app[BROKER_KEY] = Broker(self.listener.registry)
        app[COMMANDS_KEY] = self.listener.commands
        fallback.setup_routes(app, self.listener)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = await self._bind(_ssl_context(tls))
        return self.port

    async def _bind(self, ctx: ssl.SSLContext) -> int:
        """Bind TCP then UDP on the same port number, retrying when port 0 collides."""
        assert self._runner is not None
        assert self.listener is not None
        host = self.settings.listen_host
        for _ in range(BIND_ATTEMPTS):
            site = web.TCPSite(self._runner, host, self.settings.listen_port, ssl_context=ctx)
            await site.start()
            port = _bound_port(site)
            try:
                await self.listener.start(host, port)
            except OSError:
                await site.stop()
                if self.settings.listen_port:
                    raise
                continue
            return port
        raise OSError("no port free on both TCP and UDP")

    async def stop(self) -> None:
        """GOAWAY to agents, then close listeners and the store."""
        if self.listener is not None:
            await self.listener.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._store is not None:
            await self._store.close()


def _cert_hosts(settings: RelaySettings) -> list[str]:
    """Names for the certificate: the configured ones plus the listen address."""
    hosts = list(settings.public_hosts)
    if settings.listen_host not in ("0.0.0.0", "::", "") and settings.listen_host not in hosts:
        hosts.append(settings.listen_host)
    return hosts


def _bound_port(site: web.TCPSite) -> int:
    """The port a TCPSite actually bound (differs from the setting when that was 0)."""
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port: int = server.sockets[0].getsockname()[1]
    return port


async def serve_forever(settings: RelaySettings) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    server = RelayServer(settings)
    port = await server.start()
    host = settings.listen_host if settings.listen_host not in ("0.0.0.0", "::") else "127.0.0.1"
    print(f"rmon-relay listening on https://{host}:{port}/ (HTTPS/TCP and QUIC/UDP)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
