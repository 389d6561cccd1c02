#!/usr/bin/env bash
# The main job: install what is missing, build, start a local cluster
# (controller + 3 memory nodes), write and read back 1 GiB of pages with every
# page verified, print a summary, and stop everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
exec build/release/src/cmd/tessera demo --memnodes 7 --capacity 1G --size 1G --redundancy ec:4+2 "$@"
