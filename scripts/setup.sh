#!/usr/bin/env bash
# Set up ktp-printsrv on Debian 12: the system packages it drives (as root, via apt-get) and a
# virtual environment (.venv) with the pinned Python dependencies.
#   bash scripts/setup.sh          runtime
#   bash scripts/setup.sh --dev    runtime + test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

PKGS=(pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools
      cups cups-ipp-utils libcups2-dev poppler-utils avahi-daemon dbus
      softhsm2 fonts-liberation fonts-ocr-b swig pkg-config gcc openssl zbar-tools)
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
[ "$DEV" = 1 ] && PKGS+=(chromium qpdf systemd)
# The EAC tests check our CV certificates with OpenPACE's cvc-print (an independent parser).
[ "$DEV" = 1 ] && PKGS+=(openpace)
# The SMS tests and benchmark run Kannel with its fake SMSC (a gateway of its own per test).
[ "$DEV" = 1 ] && PKGS+=(kannel kannel-extras)
# The independent BAC test reads vsmartcard's ePass emulator (vicc); Debian's package needs
# pycryptodome and does not depend on it (tests/chip/test_chip_vicc_realstack.py).
[ "$DEV" = 1 ] && PKGS+=(vsmartcard-vpicc python3-pycryptodome)
# The node fault tests: a node's clock hours off (faketime), a lossy link (tc netem; nftables
# drops the packets on a kernel without sch_netem).
[ "$DEV" = 1 ] && PKGS+=(faketime iproute2 nftables)
if ! command -v python3.11 >/dev/null && ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  PKGS+=(python3 python3-venv python3-dev)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "python3 -m venv failed: install python3-venv"; exit 1; }
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$DEV" = 1 ]; then
  .venv/bin/python -m pip install -q -r requirements-dev.txt
else
  .venv/bin/python -m pip install -q -r requirements.txt
fi
echo "setup done: .venv ready"
