"""Run ``packaging/democam.py`` (a PyPI ipycam virtual camera) inside a network namespace.

Dependency-free on purpose (no pytest): ``packaging/demo.py`` uses it too. The camera runs in a
scratch directory as its own session; leaving the ``with`` block sends SIGTERM to the whole
process group (ipycam's ffmpeg encoders included) and SIGKILLs it if it lingers.

Example::

    with site_netns(name, host_ip, ns_ip, prefix), start_ipycam(name, ns_ip) as cam:
        print(cam.xaddr, cam.rtsp_main, cam.snapshot_uri)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.peers.netns import popen_in_netns

DEMOCAM = Path(__file__).resolve().parents[2] / "packaging" / "democam.py"
READY_LINE = "STARTED"


@dataclass
class IpycamProcess:
    """A running virtual camera and the URLs it advertises."""

    popen: subprocess.Popen[str]
    netns: str
    local_ip: str
    onvif_port: int
    rtsp_port: int
    workdir: Path
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def xaddr(self) -> str:
        """The ONVIF device service URL (as its WS-Discovery XAddrs says)."""
        return f"http://{self.local_ip}:{self.onvif_port}/onvif/device_service"

    @property
    def rtsp_main(self) -> str:
        """Main stream (640x360)."""
        return f"rtsp://{self.local_ip}:{self.rtsp_port}/video_main"

    @property
    def rtsp_sub(self) -> str:
        """Sub stream (320x180)."""
        return f"rtsp://{self.local_ip}:{self.rtsp_port}/video_sub"

    @property
    def snapshot_uri(self) -> str:
        """HTTP JPEG snapshot (Basic auth when credentials are set)."""
        return f"http://{self.local_ip}:{self.onvif_port}/snapshot.jpg"

    @property
    def log_path(self) -> Path:
        """Where the camera's stderr goes."""
        return self.workdir / "democam.log"

    def log(self) -> str:
        """What the camera logged so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if it does not exit within ``timeout``."""
        if self.popen.poll() is None:
            _signal_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen, signal.SIGKILL)
                self.popen.wait(timeout)
        _signal_group(self.popen, signal.SIGKILL)  # stray ffmpeg children, if any
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def _signal_group(popen: subprocess.Popen[str], sig: int) -> None:
    """Signal the process group the camera leads; gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


@contextlib.contextmanager
def start_ipycam(
    netns: str,
    local_ip: str,
    *,
    onvif_port: int = 8080,
    rtsp_port: int = 8554,
    username: str = "",
    password: str = "",
    name: str = "rmon demo camera",
    python: str = sys.executable,
    startup_timeout: float = 30.0,
) -> Iterator[IpycamProcess]:
    """Start a virtual camera in ``netns`` advertising ``local_ip``; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="democam-") as tmp:
        cam = _spawn(
            netns,
            local_ip=local_ip,
            onvif_port=onvif_port,
            rtsp_port=rtsp_port,
            username=username,
            password=password,
            name=name,
            python=python,
            workdir=Path(tmp),
        )
        try:
            _wait_ready(cam, startup_timeout)
            yield cam
        finally:
            cam.stop()


def _spawn(
    netns: str,
    *,
    local_ip: str,
    onvif_port: int,
    rtsp_port: int,
    username: str,
    password: str,
    name: str,
    python: str,
    workdir: Path,
) -> IpycamProcess:
    """Popen democam inside the namespace; the password travels in the environment, not argv."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "RMON_DEMOCAM_ONVIF_PORT": str(onvif_port),
        "RMON_DEMOCAM_RTSP_PORT": str(rtsp_port),
        "RMON_DEMOCAM_LOCAL_IP": local_ip,
        "RMON_DEMOCAM_USERNAME": username,
        "RMON_DEMOCAM_PASSWORD": password,
        "RMON_DEMOCAM_NAME": name,
    }
    with (workdir / "democam.log").open("wb") as log:
        popen = popen_in_netns(
            netns,
            [python, str(DEMOCAM)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return IpycamProcess(popen, netns, local_ip, onvif_port, rtsp_port, workdir, username, password)


def _wait_ready(cam: IpycamProcess, timeout: float) -> None:
    """Read stdout lines until STARTED; fail with the camera's log on exit or timeout."""
    assert cam.popen.stdout is not None
    deadline = time.monotonic() + timeout
    while (line := _readline(cam.popen.stdout, deadline)) is not None:
        if line.strip() == READY_LINE:
            return
    if cam.popen.poll() is not None:
        raise RuntimeError(
            f"democam exited ({cam.popen.returncode}) before {READY_LINE}:\n{cam.log()}"
        )
    raise TimeoutError(f"democam not {READY_LINE} within {timeout} s:\n{cam.log()}")


def _readline(stream: IO[str], deadline: float) -> str | None:
    """One line, or None at EOF or when the deadline passes (select, so no busy wait)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
        return None
    return stream.readline() or None
