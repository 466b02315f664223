"""Start the real rmon processes (relay, agent) as subprocesses, for tests and the demo.

Dependency-free on purpose (no pytest): ``packaging/demo.py`` uses it too. Each process runs in
its own session so the whole group can be killed; output goes to a log file in its data dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
LISTEN_RE = re.compile(r"listening on https://([^/]+):(\d+)/")


@dataclass
class Proc:
    """A started process with its log file."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    #: Where this process's output starts in a log file shared with earlier runs (a restart).
    log_offset: int = 0

    def log(self) -> str:
        """What this process wrote so far (for readiness checks and failure messages)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(self.log_offset)
            return fh.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal the process group and wait; SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: how a crash or power cut looks to the peers."""
        self.stop(signal.SIGKILL)


def start(
    argv: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> Proc:
    """Start ``argv`` (optionally behind ``prefix``, e.g. ip netns exec) logging to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = log_path.open("ab")
    offset = fh.tell()
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    popen = subprocess.Popen(
        [*prefix, *argv], stdout=fh, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
    )
    fh.close()
    return Proc(popen, log_path, offset)


def wait_for_log(proc: Proc, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
    """Block until the log shows ``pattern`` (a readiness line), or fail with the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := pattern.search(proc.log()):
            return match
        if proc.popen.poll() is not None:
            raise RuntimeError(f"process exited ({proc.popen.returncode}):\n{proc.log()}")
        time.sleep(0.05)  # polling a log file; the process offers no other readiness signal
    raise TimeoutError(f"no {pattern.pattern!r} within {timeout} s:\n{proc.log()}")


@dataclass
class Relay:
    """A running relay process."""

    proc: Proc
    data_dir: Path
    host: str
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of portal and API."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca(self) -> Path:
        """The relay CA that agents pin."""
        return self.data_dir / "tls" / "ca.pem"


def start_relay(
    data_dir: Path, listen: str = "127.0.0.1:0", env: dict[str, str] | None = None
) -> Relay:
    """Start ``rmon-relay serve`` and wait until it listens."""
    argv = [str(VENV_BIN / "rmon-relay"), "serve", "--data-dir", str(data_dir), "--listen", listen]
    proc = start(argv, data_dir / "relay.log", env)
    match = wait_for_log(proc, LISTEN_RE, 30)
    return Relay(proc, data_dir, match.group(1), int(match.group(2)), env or {})


def run_cli(
    argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run an rmon CLI command to completion and capture its output."""
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def create_account(
    relay: Relay, email: str, name: str, password: str
) -> subprocess.CompletedProcess[str]:
    """``rmon-relay account create`` against the relay's data dir."""
    return run_cli(
        [
            str(VENV_BIN / "rmon-relay"),
            "account",
            "create",
            "--data-dir",
            str(relay.data_dir),
            "--email",
            email,
            "--name",
            name,
            "--password",
            password,
        ],
        env=relay.env,
    )


def register_agent(
    data_dir: Path, relay: Relay, email: str, password: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``rmon-agent register`` with the password passed through the environment."""
    return run_cli(
        [
            str(VENV_BIN / "rmon-agent"),
            "register",
            "--data-dir",
            str(data_dir),
            "--relay",
            relay.url,
            "--relay-ca",
            str(relay.ca),
            "--email",
            email,
        ],
        env={**(env or {}), "RMON_AGENT_PASSWORD": password},
    )


def start_agent(data_dir: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``rmon-agent run``."""
    argv = [str(VENV_BIN / "rmon-agent"), "run", "--data-dir", str(data_dir)]
    return start(argv, data_dir / "agent.log", env)
