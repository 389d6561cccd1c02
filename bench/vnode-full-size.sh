#!/usr/bin/env bash
# Issue 4's acceptance workloads at their full sizes, which CI cannot afford
# (the tests in tests/run_test.cc run the same programs at a few MiB): each
# runs natively, then under `tessera run` with --cache a quarter of the native
# run's peak RSS; stdout must be byte-identical. Prints one JSON object per
# workload and a table; the exit status is 1 if any output differed or a
# run failed. Takes about 20 minutes here (python alone ~10). Run after
# `bash scripts/build.sh release`.
#
#   bench/vnode-full-size.sh [--only "python sort sqlite fork"]
#                            [--python-mib 2048] [--sort-mib 1024]
#                            [--sqlite-rows 12000000] [--fork-mib 512]
#                            [--redundancy none] [--out FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
T=$BUILD/src/cmd/tessera
WL=tests/workloads
PY=/usr/bin/python3
ONLY="python sort sqlite fork"
PYTHON_MIB=2048
SORT_MIB=1024
SQLITE_ROWS=12000000
FORK_MIB=512
REDUNDANCY=none
OUT=/dev/null
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    --python-mib) PYTHON_MIB=$2; shift 2 ;;
    --sort-mib) SORT_MIB=$2; shift 2 ;;
    --sqlite-rows) SQLITE_ROWS=$2; shift 2 ;;
    --fork-mib) FORK_MIB=$2; shift 2 ;;
    --redundancy) REDUNDANCY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$T" ] || { echo "missing $T: run bash scripts/build.sh release first" >&2; exit 2; }
TMP=$(mktemp -d /var/tmp/tessera-full-size-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failed=0

# run NAME STDIN PROGRAM ARGS...: the program natively, then under tessera
# (run directly, no shell between: the managed process is the program).
run() {
  local name=$1 in=$2 native_s rss_kb cache_mib tessera_s same
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
  local line
  line=$(printf '{"workload":"%s","native_s":%s,"native_peak_rss_mib":%d,"cache_mib":%d,"tessera_s":%.2f,"exit":%d,"identical":%s,"output_bytes":%d,"stats":%s}' \
    "$name" "$native_s" $(( rss_kb / 1024 )) "$cache_mib" "$tessera_s" "$rc" "$same" \
    "$(stat -c %s "$TMP/$name.native")" "$(cat "$TMP/$name.json" 2>/dev/null || echo null)")
  echo "$line" | tee -a "$OUT"
  printf '%-8s native %7.1f s  peak %6d MiB | tessera --cache %5d MiB %7.1f s (%.1fx)  identical: %s\n' \
    "$name" "$native_s" $(( rss_kb / 1024 )) "$cache_mib" "$tessera_s" "$(echo "$tessera_s / $native_s" | bc -l)" "$same" >> "$TMP/table"
}

for w in $ONLY; do
  case $w in
    python) run python /dev/null $PY $WL/hash_structure.py "$PYTHON_MIB" ;;
    sort)
      # ~26 bytes a line
      $PY $WL/sort_input.py $(( SORT_MIB * 1024 * 1024 / 26 )) > "$TMP/sort.input"
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
