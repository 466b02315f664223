"""Start the GStreamer RTSP test camera (``gst_rtsp_server.py``) for tests and benchmarks.

Runs under Debian's ``/usr/bin/python3`` (the venv has no ``gi``), on a port the server picks
itself (no race for a "free" port), in its own session so the whole process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
READY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RtspServer:
    """A running test camera: ``url("/h264")`` gives a stream URL (without credentials)."""

    base: str  # rtsp://127.0.0.1:<port>
    port: int
    pid: int
    log_path: Path

    def url(self, mount: str) -> str:
        """Stream URL for a mount (/h264, /h264v, /h265)."""
        return f"{self.base}{mount}"

    def log(self) -> str:
        """What GStreamer wrote to stderr (for failure messages)."""
        return self.log_path.read_text(errors="replace")


def available() -> bool:
    """Whether Debian's Python with GStreamer RTSP server bindings is installed."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    probe += "; from gi.repository import GstRtspServer"
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@contextlib.contextmanager
def gst_rtsp_server(
    user: str = "",
    password: str = "",
    *,
    gop: int = 15,
    fps: int = 15,
    port: int = 0,
    bitrate: int = 800,
    pattern: str = "ball",
) -> Iterator[RtspServer]:
    """Run the server until the block ends; Digest auth when ``user`` is given.

    ``port`` 0 lets the server pick; pass a previous server's port to simulate a camera reboot.
    """
    argv = [SYSTEM_PYTHON, str(SERVER_SCRIPT), str(port), "--gop", str(gop), "--fps", str(fps)]
    argv += ["--bitrate", str(bitrate), "--pattern", pattern]
    if user:
        argv += ["--user", user, "--password", password]
    with tempfile.NamedTemporaryFile(prefix="gst-rtsp-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True, bufsize=0
        )
    try:
        base = _wait_ready(proc, log_path)
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        yield RtspServer(base, int(base.rsplit(":", 1)[1]), proc.pid, log_path)
    finally:
        _kill_group(proc)
        log_path.unlink(missing_ok=True)


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    """Block on the server's stdout until its READY line; its base URL."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    buffered = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise TimeoutError(f"RTSP server not ready:\n{log_path.read_text()}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"RTSP server exited ({proc.wait()}):\n{log_path.read_text()}")
            buffered += chunk
    line = buffered.split(b"\n", 1)[0].decode()
    if not line.startswith("READY "):
        raise RuntimeError(f"unexpected RTSP server output {line!r}")
    return line.split(" ", 1)[1].strip()


def _drain(proc: subprocess.Popen[bytes]) -> None:
    """Keep reading stdout so the server never blocks on a full pipe."""
    assert proc.stdout is not None
    with contextlib.suppress(OSError, ValueError):
        while proc.stdout.read(4096):
            pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()
