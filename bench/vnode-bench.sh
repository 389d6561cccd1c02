#!/usr/bin/env bash
# The vNode bench (issue 4): each workload of tessera-vnode-workload at a
# working set of --mib, run all-local, then with local memory limited to
# 100/50/25 % of the working set three ways: `tessera run --cache`, Linux swap
# to a swap file under a cgroup memory limit, and swap to zram (compressed
# local RAM, for reference). Also the fault path: Tessera's remote fault
# p50/p99 beside a local userfaultfd fault and a raw TCP ping-pong, measured in
# this run. Prints one JSON object per line and a table; never fails on a
# figure. Needs root for the swap runs (it creates and removes the swap file,
# the zram setup and its cgroups; cgroup v1 or v2); without root it runs the
# rest. Run after `bash scripts/build.sh release`.
#
#   bench/vnode-bench.sh [--mib 256] [--fractions "100 50 25"]
#                        [--workloads "seq random minibatch sort zipf"] [--out FILE]
#                        [--no-swap] [--redundancy ec:4+2] [--layout auto|split|span]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
W=$BUILD/bench/tessera-vnode-workload
T=$BUILD/src/cmd/tessera
MIB=256
FRACTIONS="100 50 25"
WORKLOADS="seq random minibatch sort zipf"
OUT=/dev/null
SWAP=1
REDUNDANCY=ec:4+2
LAYOUT=auto
while [ $# -gt 0 ]; do
  case $1 in
    --mib) MIB=$2; shift 2 ;;
    --fractions) FRACTIONS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-swap) SWAP=0; shift ;;
    --redundancy) REDUNDANCY=$2; shift 2 ;;
    --layout) LAYOUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for b in "$W" "$T"; do
  [ -x "$b" ] || { echo "missing $b: run bash scripts/build.sh release first" >&2; exit 2; }
done
if [ "$(id -u)" != 0 ] && [ $SWAP = 1 ]; then
  echo "not root: skipping the swap and zram runs" >&2
  SWAP=0
fi
TMP=$(mktemp -d /tmp/tessera-vnode-bench-XXXXXX)
emit() { echo "$1" | tee -a "$TMP/results.jsonl"; }
SWAPFILE=/var/tmp/tessera-bench.swap
CG=""
cleanup() {
  swapoff "$SWAPFILE" 2>/dev/null; rm -f "$SWAPFILE"
  if grep -q '^/dev/zram0' /proc/swaps 2>/dev/null; then swapoff /dev/zram0; echo 1 > /sys/block/zram0/reset; fi
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# A cgroup with `bytes` of memory, v1 or v2; sets CG.
make_cgroup() {
  local bytes=$1
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CG=/sys/fs/cgroup/memory/tessera-bench-$$
    mkdir -p "$CG" && echo "$bytes" > "$CG/memory.limit_in_bytes"
  elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    CG=/sys/fs/cgroup/tessera-bench-$$
    mkdir -p "$CG" && echo "$bytes" > "$CG/memory.max"
  else
    echo "no cgroup memory controller (v1 or v2)" >&2; return 1
  fi
}
in_cgroup() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }
# OOM kills in the current cgroup so far (0 without one): Linux's reclaim can
# give up on a cgroup that swaps heavily and kill its process instead.
oom_kills() {
  if [ -z "$CG" ]; then echo 0
  elif [ -f "$CG/memory.events" ]; then sed -n 's/^oom_kill \([0-9]*\)/\1/p' "$CG/memory.events"
  else sed -n 's/^oom_kill \([0-9]*\)/\1/p' "$CG/memory.oom_control" 2>/dev/null || echo 0
  fi
}
field() { sed -nE "s/.*\"$1\": *([0-9.]+).*/\1/p" | head -1; }
# A run's JSON line, or one that says how it failed.
result() {  # system workload fraction output status [extra]
  local s c
  s=$(echo "$4" | field seconds); c=$(echo "$4" | field checksum)
  if [ -z "$s" ]; then
    local why="exit status $5"
    [ "$(oom_kills)" -gt 0 ] 2>/dev/null && why="killed by the kernel: out of memory under the cgroup limit"
    emit "{\"system\":\"$1\",\"workload\":\"$2\",\"mib\":$MIB,\"cache_percent\":$3,\"seconds\":null,\"failed\":\"$why\"}"
    return
  fi
  emit "{\"system\":\"$1\",\"workload\":\"$2\",\"mib\":$MIB,\"cache_percent\":$3,\"seconds\":$s,\"vs_local\":$(awk -v a="$s" -v b="${native[$2]}" 'BEGIN{printf "%.2f", a/b}'),\"checksum\":$c${6:-}}"
}

# Baselines of this run.
pp=$("$W" pingpong)
uf=$("$W" uffd-local)
emit "$pp"
emit "$uf"
# Whether an idle vCPU polls before it halts: with it off (this machine's
# default), waking a thread on an idle vCPU costs ~35-40 us, and a remote fault
# takes at least two such wake-ups (doc/design.md, "Where a fault's time goes").
hp=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2>/dev/null || echo null)
emit "{\"kind\":\"machine\",\"cpus\":$(nproc),\"guest_halt_poll_ns\":$hp,\"redundancy\":\"$REDUNDANCY\",\"layout\":\"$LAYOUT\"}"
declare -A native
for w in $WORKLOADS; do
  r=$("$W" "$w" "$MIB")
  native[$w]=$(echo "$r" | field seconds)
  emit "{\"system\":\"local\",\"workload\":\"$w\",\"mib\":$MIB,\"cache_percent\":null,\"seconds\":${native[$w]},\"vs_local\":1.00,\"checksum\":$(echo "$r" | field checksum)}"
done

# Local memory at fraction f: f% of the working set plus 8 MiB — for swap the
# workload's footprint outside its working set (binary, libraries, stack),
# for Tessera slack beside the working set (the heap's own bookkeeping, the
# evictor's headroom), whose footprint outside the heap it does not limit.
local_mib() { echo $(( MIB * $1 / 100 + 8 )); }

run_tessera() {  # workload fraction
  local w=$1 f=$2 r st p50 p99
  rm -f "$TMP/stats.json"
  r=$("$T" run --redundancy "$REDUNDANCY" --layout "$LAYOUT" --cache "$(local_mib "$f")M" --heap "$(( MIB * 2 + 64 ))M" --stats-json "$TMP/stats.json" \
      -- "$W" "$w" "$MIB" 2>/dev/null); st=$?
  p50=$(field fault_p50_ns < "$TMP/stats.json" 2>/dev/null); p99=$(field fault_p99_ns < "$TMP/stats.json" 2>/dev/null)
  result tessera "$w" "$f" "$r" $st ",\"fault_p50_ns\":${p50:-null},\"fault_p99_ns\":${p99:-null}"
}

run_swapped() {  # system workload fraction
  local sys=$1 w=$2 f=$3 r st
  make_cgroup $(( $(local_mib "$f") << 20 )) || return
  r=$(in_cgroup "$W" "$w" "$MIB" 2>/dev/null); st=$?
  result "$sys" "$w" "$f" "$r" $st
}

for w in $WORKLOADS; do for f in $FRACTIONS; do run_tessera "$w" "$f"; done; done
if [ $SWAP = 1 ]; then
  fallocate -l "$(( MIB * 2 ))M" "$SWAPFILE" && chmod 600 "$SWAPFILE" && mkswap -q "$SWAPFILE" >/dev/null && swapon "$SWAPFILE"
  for w in $WORKLOADS; do for f in $FRACTIONS; do run_swapped swapfile "$w" "$f"; done; done
  swapoff "$SWAPFILE"; rm -f "$SWAPFILE"
  echo 1 > /sys/block/zram0/reset
  echo lz4 > /sys/block/zram0/comp_algorithm 2>/dev/null
  echo "$(( MIB * 2 ))M" > /sys/block/zram0/disksize && mkswap -q /dev/zram0 >/dev/null && swapon /dev/zram0
  for w in $WORKLOADS; do for f in $FRACTIONS; do run_swapped zram "$w" "$f"; done; done
fi

# The table: seconds, and the ratio to all-local.
echo
printf '%-10s %-9s %6s %10s %8s\n' workload system local seconds vs_local
cp "$TMP/results.jsonl" "$OUT"
/usr/bin/python3 - "$TMP/results.jsonl" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    if "system" in r:
        cache = f"{r['cache_percent']}%" if r.get("cache_percent") else "-"
        if r.get("seconds") is None:
            print(f"{r['workload']:<10} {r['system']:<9} {cache:>6} {'-':>10} {'-':>8}  {r.get('failed')}")
        else:
            print(f"{r['workload']:<10} {r['system']:<9} {cache:>6} {r['seconds']!s:>10} {r['vs_local']!s:>8}")
pp = next((r for r in rows if r.get("kind") == "pingpong"), None)
uf = next((r for r in rows if r.get("kind") == "uffd-local"), None)
t = [r for r in rows if r.get("system") == "tessera" and r.get("fault_p50_ns")]
m = next((r for r in rows if r.get("kind") == "machine"), None)
if m:
    print(f"machine: {m['cpus']} cpus, guest halt polling {m['guest_halt_poll_ns']} ns, redundancy {m['redundancy']}, layout {m.get('layout', 'auto')}")
if pp and uf and t:
    bar = 1.2 * (pp["p50_ns"] + uf["p50_ns"])
    for r in t:
        print(f"fault p50 {r['workload']} {r['cache_percent']}%: {r['fault_p50_ns']/1e3:.0f} us "
              f"(bar 1.2 x (uffd {uf['p50_ns']/1e3:.0f} + ping-pong {pp['p50_ns']/1e3:.0f}) = {bar/1e3:.0f} us)")
PY
