#!/usr/bin/env bash
# One command for a whole rmon system on embedded defaults: installs what is missing, then starts
# relay + agent + a virtual ONVIF camera and prints the portal URL and the login.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install.sh
exec .venv/bin/python packaging/demo.py
