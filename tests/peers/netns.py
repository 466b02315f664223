"""Network namespaces that play a camera site's LAN, joined to this host by a veth pair.

Dependency-free on purpose (no pytest): ``packaging/demo.py`` uses it too. Everything goes through
``ip`` (iproute2) and needs root. The host end of the veth lives in the root namespace with
``host_ip``; the other end lives in the namespace with ``ns_ip``. Inside the namespace ``lo`` is up
with multicast on, and 224.0.0.0/4 is routed out of the veth so a camera's WS-Discovery group join
and its Hello go over the link, where the host can hear them and probe them.

Use only TEST-NET addresses (RFC 5737: 198.51.100.0/24, 203.0.113.0/24): they exist only on
the link made here. ``192.0.2.0/24`` is taken by this machine's own uplink, so avoid it.

Example (a fresh namespace on a free link, deleted afterwards even on failure)::

    with allocated_site_netns("rmon-t") as link:
        proc = popen_in_netns(link.name, ["python3", "-m", "http.server", "-b", link.ns_ip])
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: TEST-NET-3 (RFC 5737), cut into /28 links for tests that run side by side. TEST-NET-2 is the
#: demo's and the end-to-end tests' fixed link; TEST-NET-1 is this machine's uplink.
TEST_SUBNET_POOL = ipaddress.IPv4Network("203.0.113.0/24")
MULTICAST_NET = "224.0.0.0/4"
ALLOC_LOCK = os.path.join(tempfile.gettempdir(), "rmon-netns.lock")
_STALE_RE = re.compile(r"^(?P<prefix>.+)-(?P<pid>\d+)-[0-9a-f]{6}$")


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message carries its stderr."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ``ip`` command (errors carry iproute2's own message)."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def veth_names(name: str) -> tuple[str, str]:
    """Host-side and namespace-side veth names: derived from the netns name, within IFNAMSIZ."""
    tag = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"rh{tag}", f"rn{tag}"


def unique_name(prefix: str = "rmon") -> str:
    """A netns name no parallel run will pick; it carries our pid so stale ones can be swept."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def list_netns() -> list[str]:
    """Names of the existing network namespaces."""
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def create_site_netns(name: str, host_ip: str, ns_ip: str, prefix: int = 24) -> None:
    """Make netns ``name`` joined to the host by a veth; undo everything if any step fails."""
    host_if, ns_if = veth_names(name)
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/{prefix}", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _configure_inside(name, ns_if, ns_ip, prefix)
    except BaseException:
        delete_netns(name)
        raise
    log.debug("netns %s: host %s on %s <-> %s on %s", name, host_ip, host_if, ns_ip, ns_if)


def _configure_inside(name: str, ns_if: str, ns_ip: str, prefix: int) -> None:
    """Loopback with multicast, the veth end with its address, multicast routed out of the veth."""
    for args in (
        ("link", "set", "lo", "up"),
        ("link", "set", "lo", "multicast", "on"),
        ("addr", "add", f"{ns_ip}/{prefix}", "dev", ns_if),
        ("link", "set", ns_if, "multicast", "on"),
        ("link", "set", ns_if, "up"),
        ("route", "add", MULTICAST_NET, "dev", ns_if),
    ):
        _ip("-n", name, *args)


def delete_netns(name: str) -> None:
    """Remove netns ``name`` and its veth pair; a no-op for what does not exist."""
    host_if, _ = veth_names(name)
    _ip("netns", "del", name, check=False)  # takes the veth pair with it ...
    _ip("link", "del", host_if, check=False)  # ... unless creation stopped half-way


@contextlib.contextmanager
def site_netns(name: str, host_ip: str, ns_ip: str, prefix: int = 24) -> Iterator[str]:
    """``create_site_netns`` for the duration of a ``with`` block, deleted even on failure."""
    create_site_netns(name, host_ip, ns_ip, prefix)
    try:
        yield name
    finally:
        delete_netns(name)


@dataclass(frozen=True)
class SiteLink:
    """A namespace and the two ends of its veth link."""

    name: str
    host_ip: str
    ns_ip: str
    prefix: int


@contextlib.contextmanager
def allocated_site_netns(name_prefix: str = "rmon") -> Iterator[SiteLink]:
    """A uniquely named site netns on a free TEST-NET-3 /28, for tests that may run side by side.

    Picking the subnet and creating the link happen under a file lock, so two runs starting
    at once cannot take the same one.
    """
    delete_stale_netns(name_prefix)
    name = unique_name(name_prefix)
    with open(ALLOC_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        host_ip, ns_ip, prefix = free_subnet()
        create_site_netns(name, host_ip, ns_ip, prefix)
    try:
        yield SiteLink(name, host_ip, ns_ip, prefix)
    finally:
        delete_netns(name)


def free_subnet(
    pool: ipaddress.IPv4Network = TEST_SUBNET_POOL, prefix: int = 28
) -> tuple[str, str, int]:
    """(host_ip, ns_ip, prefix) of a link in ``pool`` no interface of the host uses yet."""
    used = _host_addresses()
    candidates = [net for net in pool.subnets(new_prefix=prefix) if not any(a in net for a in used)]
    if not candidates:
        raise NetnsError(f"no free /{prefix} left in {pool}")
    net = secrets.choice(candidates)  # random: two runs starting together rarely pick the same
    hosts = list(net.hosts())
    return str(hosts[0]), str(hosts[1]), prefix


def _host_addresses() -> list[ipaddress.IPv4Address]:
    """IPv4 addresses configured in the root namespace."""
    out = _ip("-4", "-o", "addr", "show").stdout
    found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    return [ipaddress.IPv4Address(a) for a in found]


def delete_stale_netns(prefix: str) -> list[str]:
    """Delete ``unique_name(prefix)`` namespaces whose creating process is gone (a killed run)."""
    removed = []
    for name in list_netns():
        match = _STALE_RE.match(name)
        if match and match["prefix"] == prefix and not _pid_alive(int(match["pid"])):
            delete_netns(name)
            removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_argv(name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so it runs inside netns ``name``."""
    return ["ip", "netns", "exec", name, *argv]


def popen_in_netns(name: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` in netns ``name`` as a new session: ``os.killpg(p.pid, sig)`` ends it all."""
    popen_kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(netns_argv(name, argv), **popen_kwargs)


def run_in_netns(
    name: str, argv: Sequence[str], *, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside netns ``name`` to completion, capturing its output."""
    return subprocess.run(
        netns_argv(name, argv), capture_output=True, text=True, timeout=timeout, check=False
    )
