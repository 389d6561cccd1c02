#!/usr/bin/env bash
# The main job: install what is missing, build, then
#  1. start a local cluster (controller + 7 memory nodes), write and read back
#     1 GiB of ec:4+2 pages with every page verified, kill -9 a memory node,
#     verify while degraded and after the rebuild, and stop it all;
#  2. run an unmodified python3 whose heap is four times its local cache under
#     `tessera run` (an embedded cluster it starts and stops itself), with a
#     multiprocessing pool forked from it, and check that its output is byte
#     for byte the one it prints without Tessera.
# Options after the script name go to `tessera demo` (step 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
bin=build/release/src/cmd/tessera
"$bin" demo --memnodes 7 --capacity 1G --size 1G --redundancy ec:4+2 "$@"

echo
echo "=== tessera run: python3 with a heap four times its 16 MiB cache, then a pool forked from it"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for job in "hash_structure.py 64" "fork_workers.py 48"; do
  script="/usr/bin/python3 tests/workloads/$job"
  $script > "$work/native"
  echo "\$ tessera run --cache 16M -- python3 $job"
  "$bin" run --cache 16M --heap 1G -- $script > "$work/run"
  if cmp -s "$work/native" "$work/run"; then
    echo "output identical to the run without Tessera ($(wc -l < "$work/run") lines)"
  else
    echo "OUTPUT DIFFERS from the run without Tessera" >&2
    diff "$work/native" "$work/run" | head >&2
    exit 1
  fi
done
