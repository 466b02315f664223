"""A virtual ONVIF camera for the demo and the tests: PyPI ipycam, headless, with generated frames.

Run it in a scratch directory (ipycam writes ``ptz_presets.json`` into the cwd) and, because
ipycam binds every interface (HTTP, RTSP and UDP 3702), inside a network namespace. It prints
``STARTED`` on stdout once ONVIF, WS-Discovery, RTSP and the snapshot all answer; everything
else goes to stderr. SIGTERM or SIGINT stops it cleanly (``IPCamera.stop()`` sends the
WS-Discovery Bye and ends the ffmpeg encoders).

Settings come from options or ``RMON_DEMOCAM_*`` environment variables (options win). Pass the
password through ``RMON_DEMOCAM_PASSWORD`` rather than ``--password`` to keep it out of ``ps``.
Setting both username and password turns on ipycam's auth (ONVIF WS-UsernameToken digest,
HTTP Basic for the snapshot; RTSP stays open).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any
from urllib.parse import quote

MAIN_SIZE = (640, 360)
SUB_SIZE = (320, 180)
FPS = 15
# ipycam's default 8M main / 1M sub is far more than a 640x360 test pattern needs and costs CPU
# on a 2-core box in every ffmpeg encoder it starts per RTSP session.
MAIN_BITRATE = "600K"
SUB_BITRATE = "200K"
ENV_PREFIX = "RMON_DEMOCAM_"

log = logging.getLogger("democam")


def _env(name: str, default: str) -> str:
    """One ``RMON_DEMOCAM_<NAME>`` setting."""
    return os.environ.get(ENV_PREFIX + name, default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options, defaulting to the environment, defaulting to ipycam's usual ports."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onvif-port", type=int, default=int(_env("ONVIF_PORT", "8080")))
    p.add_argument("--rtsp-port", type=int, default=int(_env("RTSP_PORT", "8554")))
    p.add_argument(
        "--local-ip",
        default=_env("LOCAL_IP", "127.0.0.1"),
        help="address advertised in XAddrs and stream URIs; WS-Discovery joins the group on it",
    )
    p.add_argument("--username", default=_env("USERNAME", ""))
    p.add_argument("--password", default=_env("PASSWORD", ""), help="prefer the env variable")
    p.add_argument("--name", default=_env("NAME", "rmon demo camera"))
    p.add_argument("--serial", default=_env("SERIAL", ""), help="default: from address and port")
    args = p.parse_args(argv)
    # Distinct serials, so two demo cameras never look like one camera to anything keyed by it.
    args.serial = args.serial or f"DEMO-{args.local_ip}-{args.onvif_port}"
    return args


def build_camera(args: argparse.Namespace) -> Any:
    """An ipycam IPCamera configured small and cheap, with the PTZ namespace fix applied."""
    from ipycam import CameraConfig, IPCamera

    cfg = CameraConfig(
        # ipycam puts the name verbatim into its space-separated WS-Discovery scopes, so a name
        # with spaces would split into several scopes; ONVIF scope items are URIs: escape it.
        name=quote(args.name, safe=""),
        model="VirtualCam-1",
        serial_number=args.serial,
        main_width=MAIN_SIZE[0],
        main_height=MAIN_SIZE[1],
        main_fps=FPS,
        main_bitrate=MAIN_BITRATE,
        sub_width=SUB_SIZE[0],
        sub_height=SUB_SIZE[1],
        sub_fps=FPS,
        sub_bitrate=SUB_BITRATE,
        local_ip=args.local_ip,
        onvif_port=args.onvif_port,
        rtsp_port=args.rtsp_port,
        username=args.username,
        password=args.password,
    )
    cam = IPCamera(cfg)
    fix_ptz_namespaces(cam)
    fix_set_preset_token(cam)
    return cam


def fix_ptz_namespaces(cam: Any) -> None:
    """Declare the ptz:/tptz: prefixes ipycam 1.3.0's PTZ replies use but never declare.

    Without it GetPresets, SetPreset, GetStatus and GetConfigurations answer malformed XML.
    """
    ns = "http://www.onvif.org/ver20/ptz/wsdl"
    templates = cam.onvif._templates
    envelope = templates["envelope"]
    if "xmlns:tptz=" not in envelope:
        templates["envelope"] = envelope.replace(
            "xmlns:trt=", f'xmlns:ptz="{ns}" xmlns:tptz="{ns}" xmlns:trt=', 1
        )


def fix_set_preset_token(cam: Any) -> None:
    """Honour SetPreset's PresetToken element (ipycam 1.3.0 looks for an attribute instead).

    ONVIF's SetPreset overwrites the preset named by PresetToken; ipycam misses the token and
    stores a new preset, so a re-registered preset would appear twice.
    """
    from xml.sax.saxutils import escape

    service = cam.onvif
    original = service.ptz_set_preset

    def set_preset(body: str) -> str:
        token = service._extract_xml_value(body, "PresetToken")
        if not token or service.ptz is None:
            return str(original(body))
        name = service._extract_xml_value(body, "PresetName") or "Preset"
        service.ptz.set_preset(token, name)
        reply = service._render("ptz_set_preset", preset_token=escape(token))
        return str(service._wrap_envelope(reply))

    service.ptz_set_preset = set_preset


class FramePainter:
    """Test-pattern frames: a bouncing ball and a frame counter, so the video visibly moves."""

    def __init__(self, title: str) -> None:
        import numpy as np

        w, h = MAIN_SIZE
        ramp = np.linspace(40, 140, w, dtype=np.uint8)
        self._background = np.dstack([np.tile(ramp, (h, 1))] * 3)
        self._background[:, :, 0] = 90  # bluish tint (BGR)
        self._title = title
        self._count = 0

    def next(self) -> Any:
        """The next frame (a fresh array: ipycam keeps a reference to what it is given)."""
        import cv2

        frame = self._background.copy()
        x, y = self._ball_position()
        cv2.circle(frame, (x, y), 28, (0, 200, 255), -1)
        cv2.putText(frame, self._title, (16, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        text = f"frame {self._count}"
        cv2.putText(frame, text, (16, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        self._count += 1
        return frame

    def _ball_position(self) -> tuple[int, int]:
        """A ball bouncing between the edges at a few pixels per frame."""
        w, h = MAIN_SIZE
        r = 28
        span_x, span_y = w - 2 * r, h - 2 * r
        px, py = (self._count * 7) % (2 * span_x), (self._count * 4) % (2 * span_y)
        return r + (px if px < span_x else 2 * span_x - px), r + (
            py if py < span_y else 2 * span_y - py
        )


def install_stop_handlers() -> threading.Event:
    """SIGTERM/SIGINT set an event the frame loop checks (a background shell ignores SIGINT)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run(args: argparse.Namespace) -> int:
    """Start the camera, announce readiness, feed frames until told to stop."""
    stop = install_stop_handlers()
    cam = build_camera(args)
    painter = FramePainter(args.name)
    if not cam.start():
        log.error("ipycam failed to start")
        return 1
    try:
        cam.stream(painter.next())  # the snapshot answers 503 until the first frame
        print("STARTED", flush=True)
        log.info("ONVIF %s", cam.config.onvif_url)
        while not stop.is_set() and cam.is_running:
            cam.stream(painter.next())  # paces itself to main_fps
    finally:
        started = time.monotonic()
        cam.stop()
        log.info("stopped in %.2f s", time.monotonic() - started)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: logging to stderr, then ``run``."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
