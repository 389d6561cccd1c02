#!/usr/bin/env bash
# Installs every Debian package Tessera needs to build, test and run.
# Idempotent and non-interactive: it asks apt only for what is missing.
# Run as root on Debian 12.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries (README says why each is here)
  libisal-dev liburing-dev libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev
  libcli11-dev libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev
  # baselines the benchmark compares against
  memcached
  # the control plane across hosts; tests start their own members
  etcd-server
  # used by the scripts; python3 and sqlite3 are unmodified programs the quick
  # start and the tests run under `tessera run`
  procps iproute2 python3 sqlite3
  # clients with clocks that disagree (tests/clock_test.cc)
  faketime
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts a system memcached and etcd on install (where systemd runs);
# the benchmark and the tests run their own, on ports of their choosing.
for svc in memcached etcd; do
  if command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done
