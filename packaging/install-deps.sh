#!/usr/bin/env bash
# Installs Loa's build, test and benchmark dependencies on Debian 12.
# Idempotent: does nothing (and needs no network) when every package is present.
# Must run as root (or through sudo) when something is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  libboost-dev libopus-dev portaudio19-dev libsrtp2-dev
  libprotobuf-dev protobuf-compiler
  catch2 libsndfile1-dev libsamplerate0-dev libsoundtouch-dev libebur128-dev
  libsqlite3-dev libsodium-dev libssl-dev prometheus-cpp-dev
  libsystemd-dev libspdlog-dev libtomlplusplus-dev libcli11-dev
  libhowardhinnant-date-dev
  # reference peers and test tools
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad sox libsox-fmt-mp3 ffmpeg espeak-ng
  python3-protobuf iproute2 uidmap
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
