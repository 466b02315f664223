#!/usr/bin/python3
"""A GStreamer RTSP camera for tests: run with Debian's ``/usr/bin/python3`` (it has ``gi``).

    /usr/bin/python3 gst_rtsp_server.py PORT [--user U --password P] [--gop N] [--fps N]
        [--bitrate KBPS] [--pattern NAME]

PORT 0 picks a free port. Mounts (640x360, generated picture, AAC sine where noted):
``/h264`` H.264 Constrained Baseline + AAC, ``/h264v`` H.264 only, ``/h265`` H.265 Main + AAC.
With ``--user`` every mount needs RTSP Digest auth, as most cameras do. Prints
``READY rtsp://127.0.0.1:<port>`` once listening; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi  # type: ignore[import-not-found]

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # type: ignore[import-not-found]  # noqa: E402


def _pipelines(gop: int, fps: int, bitrate: int = 800, pattern: str = "ball") -> dict[str, str]:
    """Launch lines per mount; I420 keeps x265 at Main (not Rext) as browsers need."""
    video = (
        f"videotestsrc is-live=true pattern={pattern} ! "
        f"video/x-raw,format=I420,width=640,height=360,framerate={fps}/1"
    )
    audio = (
        "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 ! "
        "audioconvert ! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97"
    )
    enc = f"tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={bitrate}"
    h264 = (
        f"{video} ! x264enc {enc} ! video/x-h264,profile=baseline ! h264parse ! "
        "rtph264pay name=pay0 pt=96 config-interval=1"
    )
    h265 = f"{video} ! x265enc {enc} ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=1"
    return {
        "/h264": f"( {h264} {audio} )",
        "/h264v": f"( {h264} )",
        "/h265": f"( {h265} {audio} )",
    }


def _digest_auth(server: GstRtspServer.RTSPServer, user: str, password: str) -> None:
    """Require Digest for everyone; the one user gets the role the factories allow."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    auth.add_digest(user, password, token)
    server.set_auth(auth)


def _factory(launch: str, with_auth: bool) -> GstRtspServer.RTSPMediaFactory:
    """A shared factory: one encoder per mount however many clients play it."""
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if with_auth:
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role("user")
        perms.add_permission_for_role("user", "media.factory.access", True)
        perms.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perms)
    return factory


def main() -> None:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--gop", type=int, default=15, help="keyframe interval in frames")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate", type=int, default=800, help="video bitrate (kbit/s)")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern (snow: busy)")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user:
        _digest_auth(server, args.user, args.password)
    mounts = server.get_mount_points()
    for path, launch in _pipelines(args.gop, args.fps, args.bitrate, args.pattern).items():
        mounts.add_factory(path, _factory(launch, bool(args.user)))
    server.attach(None)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
