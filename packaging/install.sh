#!/usr/bin/env bash
# Install what rmon needs on a Debian machine: Debian packages (when missing) and a venv in .venv
# with rmon installed editable. Idempotent; run as root (or with sudo) for the Debian part.
#   packaging/install.sh          runtime + demo camera
#   packaging/install.sh --test   also the test tools (pytest, playwright, schemathesis, ruff, mypy)
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  ffmpeg                     # ipycam's encoder (the demo camera)
  chromium                   # the browser for end-to-end tests (driven by Playwright)
  iproute2 nftables          # network namespaces for the camera site in demo and tests
  postgresql                 # the relay's fleet-mode store is tested against a real server
  gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras="demo"
[ "${1:-}" = "--test" ] && extras="demo,test"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
