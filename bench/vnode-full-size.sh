#!/usr/bin/env bash
# Issue 4's acceptance workloads at their full sizes, which CI cannot afford
# (the tests in tests/run_test.cc run the same programs at a few MiB): each
# runs natively, then under `tessera run` with --cache a quarter of the native
# run's peak RSS; stdout must be byte-identical. Prints one JSON object per
# workload and a table; the exit status is 1 if any output differed or a
# run failed. With --swap (root) each also runs natively under a cgroup memory
# limit of the local memory the tessera run used (its process's peak RSS),
# swapping to a file the script creates and removes (cgroup v1 or v2). Takes about
# 90 minutes here (python ~12, sort ~24, sqlite ~43). Run after
# `bash scripts/build.sh release`.
#
#   bench/vnode-full-size.sh [--only "python sort sqlite fork"]
#                            [--python-mib 2048] [--sort-mib 1024] [--sort-line-bytes 100]
#                            [--sqlite-rows 12000000] [--fork-mib 512]
#                            [--redundancy none] [--swap] [--out FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
T=$BUILD/src/cmd/tessera
WL=tests/workloads
PY=/usr/bin/python3
ONLY="python sort sqlite fork"
PYTHON_MIB=2048
SORT_MIB=1024
SORT_LINE=100  # bytes a line, newline included: records of a log or a CSV export
SQLITE_ROWS=12000000
FORK_MIB=512
REDUNDANCY=none
OUT=/dev/null
SWAP=0
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    --python-mib) PYTHON_MIB=$2; shift 2 ;;
    --sort-mib) SORT_MIB=$2; shift 2 ;;
    --sort-line-bytes) SORT_LINE=$2; shift 2 ;;
    --sqlite-rows) SQLITE_ROWS=$2; shift 2 ;;
    --fork-mib) FORK_MIB=$2; shift 2 ;;
    --redundancy) REDUNDANCY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --swap) SWAP=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$T" ] || { echo "missing $T: run bash scripts/build.sh release first" >&2; exit 2; }
TMP=$(mktemp -d /var/tmp/tessera-full-size-XXXXXX)
SWAPFILE=/var/tmp/tessera-full-size.swap
cleanup() {
  swapoff "$SWAPFILE" 2>/dev/null; rm -f "$SWAPFILE"
  rmdir /sys/fs/cgroup/memory/tessera-full-size-$$ /sys/fs/cgroup/tessera-full-size-$$ 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
failed=0

# swapped NAME STDIN BYTES PROGRAM ARGS...: the program under a cgroup memory
# limit of BYTES, with a swap file twice its native peak (rss_kb, the
# caller's); prints its seconds. Runs in a subshell: it removes what it made.
swapped() {
  local name=$1 in=$2 bytes=$3
  shift 3
  local CG
  if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CG=/sys/fs/cgroup/memory/tessera-full-size-$$
    mkdir -p "$CG" && echo "$bytes" > "$CG/memory.limit_in_bytes"
  else
    CG=/sys/fs/cgroup/tessera-full-size-$$
    mkdir -p "$CG" && echo "$bytes" > "$CG/memory.max"
  fi
  swapoff "$SWAPFILE" 2>/dev/null; rm -f "$SWAPFILE"
  fallocate -l $(( rss_kb * 2 ))K "$SWAPFILE" && chmod 600 "$SWAPFILE" && mkswap -q "$SWAPFILE" >/dev/null &&
    swapon "$SWAPFILE" || { echo "$name: no swap file" >&2; echo null; return; }
  local start end
  start=$(date +%s.%N)
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@" < "$in" > "$TMP/$name.swap" 2> /dev/null ||
    echo "$name: the swapped run failed" >&2
  end=$(date +%s.%N)
  cmp -s "$TMP/$name.native" "$TMP/$name.swap" || echo "$name: the swapped run's output differs" >&2
  swapoff "$SWAPFILE"; rm -f "$SWAPFILE"
  rmdir "$CG"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

# run NAME STDIN PROGRAM ARGS...: the program natively, then under tessera
# (run directly, no shell between: the managed process is the program).
run() {
  local name=$1 in=$2 native_s rss_kb cache_mib tessera_s same swap_s=null
  shift 2
  /usr/bin/time -f "%e %M" -o "$TMP/$name.time" "$@" < "$in" > "$TMP/$name.native" 2> "$TMP/$name.native.err" ||
    { echo "$name: the native run failed" >&2; failed=1; return; }
  read -r native_s rss_kb < "$TMP/$name.time"
  cache_mib=$(( rss_kb / 4 / 1024 ))
  local start end rc
  start=$(date +%s.%N)
  $T run --cache "${cache_mib}M" --redundancy "$REDUNDANCY" --stats-json "$TMP/$name.json" -- "$@" \
    < "$in" > "$TMP/$name.tessera" 2> "$TMP/$name.tessera.err"
  rc=$?
  end=$(date +%s.%N)
  tessera_s=$(echo "$end - $start" | bc)
  same=false
  cmp -s "$TMP/$name.native" "$TMP/$name.tessera" && same=true
  if [ $rc != 0 ] || [ $same != true ]; then
    failed=1
    echo "$name: exit $rc, output identical: $same" >&2
    tail -5 "$TMP/$name.tessera.err" >&2
  fi
  local used
  used=$(sed -nE 's/.*"peak_rss_bytes": *([0-9]+).*/\1/p' "$TMP/$name.json" 2>/dev/null)
  [ $SWAP = 1 ] && [ -n "$used" ] && swap_s=$(swapped "$name" "$in" "$used" "$@")
  local line
  line=$(printf '{"workload":"%s","native_s":%s,"native_peak_rss_mib":%d,"cache_mib":%d,"tessera_s":%.2f,"swapfile_s":%s,"exit":%d,"identical":%s,"output_bytes":%d,"stats":%s}' \
    "$name" "$native_s" $(( rss_kb / 1024 )) "$cache_mib" "$tessera_s" "$swap_s" "$rc" "$same" \
    "$(stat -c %s "$TMP/$name.native")" "$(tr -d '\n' < "$TMP/$name.json" 2>/dev/null || echo null)")
  echo "$line" | tee -a "$OUT"
  printf '%-8s native %7.1f s  peak %6d MiB | tessera --cache %5d MiB %7.1f s (%.1fx)  identical: %s | swap file %s s\n' \
    "$name" "$native_s" $(( rss_kb / 1024 )) "$cache_mib" "$tessera_s" "$(echo "$tessera_s / $native_s" | bc -l)" "$same" \
    "$swap_s" >> "$TMP/table"
}

for w in $ONLY; do
  case $w in
    python) run python /dev/null $PY $WL/hash_structure.py "$PYTHON_MIB" ;;
    sort)
      $PY $WL/sort_input.py $(( SORT_MIB * 1024 * 1024 / SORT_LINE )) "$SORT_LINE" > "$TMP/sort.input"
      run sort /dev/null /usr/bin/sort -S $(( SORT_MIB * 2 ))M "$TMP/sort.input" ;;
    sqlite)
      $PY $WL/sqlite_queries.py "$SQLITE_ROWS" > "$TMP/queries.sql"
      run sqlite "$TMP/queries.sql" /usr/bin/sqlite3 :memory: ;;
    fork) run fork /dev/null $PY $WL/fork_workers.py "$FORK_MIB" ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
  esac
done
echo
cat "$TMP/table"
exit $failed
