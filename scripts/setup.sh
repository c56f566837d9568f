#!/usr/bin/env bash
# Installs what `character` needs to build and test, and nothing twice:
# Debian packages (C++ libraries, ccache, ninja) and a Python venv in .venv with
# torch==2.13.0 (libtorch comes from this wheel) and the oracle packages.
# Idempotent: a second run on a ready machine only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential ccache ninja-build pkg-config
  nlohmann-json3-dev libtbb-dev libcli11-dev libsentencepiece-dev
  libgtest-dev libgmock-dev libcurl4-openssl-dev libcpp-httplib-dev
  libyaml-cpp-dev libpcre2-dev zlib1g-dev libicu-dev libssl-dev libexpat1-dev
  chromium
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python: the venv carries libtorch (inside the torch wheel) and the reference
# implementations the oracle compares against. Versions pinned so that fixtures
# do not drift under us.
PYTHON=${PYTHON:-python3}
REQ=tools/oracle/requirements.txt
STAMP=.venv/.requirements.sha
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages from $REQ (torch==2.13.0 CPU first)"
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi
