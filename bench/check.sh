#!/usr/bin/env bash
# bench/check.sh: the quick benches against their bars, for every stop (not a
# CI test: timings on a shared 2-vCPU machine are noisy, so it never runs in
# .ci/run). Runs `tessera bench --quick --json` --runs times and takes the
# median of each ratio (each run measures its own baselines), then the vNode
# fault path once per redundancy (bench/vnode-bench.sh, random access at 25 %
# local memory, no swap runs), and compares each figure with its bar:
#
#   P1  read p50 / raw TCP ping-pong p50 (depth 1)            <= 1.2
#   P2  batched reads (depth 64) / memcached GETs (depth 64)  >= 2.0
#   P3  remote fault p50 / (local uffd fault p50 + ping-pong p50), none and
#       ec:4+2                                                <= 1.2
#
# A figure fails only when it misses its bar by more than the noise margin
# (--margin, 10 % by default: the spread of the medians of three runs here).
# Prints a table and exits 1 naming every figure that failed, 2 if it could
# not measure. Needs build/release (bash scripts/build.sh release).
#
#   bench/check.sh [--runs 3] [--margin 0.10] [--no-vnode]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
T=$BUILD/src/cmd/tessera
RUNS=3
MARGIN=0.10
VNODE=1
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --margin) MARGIN=$2; shift 2 ;;
    --no-vnode) VNODE=0; shift ;;
    *) echo "check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$T" ] || { echo "check.sh: missing $T: run bash scripts/build.sh release first" >&2; exit 2; }
TMP=$(mktemp -d /tmp/tessera-check-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for i in $(seq 1 "$RUNS"); do
  echo "check.sh: tessera bench --quick, run $i of $RUNS" >&2
  "$T" bench --quick --json > "$TMP/bench-$i.json" 2> "$TMP/bench-$i.err" ||
    { echo "check.sh: tessera bench failed:" >&2; cat "$TMP/bench-$i.err" >&2; exit 2; }
done
if [ $VNODE = 1 ]; then
  for r in none ec:4+2; do
    echo "check.sh: vNode fault path, $r" >&2
    bash bench/vnode-bench.sh --mib 64 --fractions 25 --workloads random --no-swap --redundancy "$r" \
      --out "$TMP/vnode-$r.jsonl" > /dev/null 2> "$TMP/vnode.err" ||
      { echo "check.sh: bench/vnode-bench.sh failed:" >&2; cat "$TMP/vnode.err" >&2; exit 2; }
  done
fi

python3 - "$TMP" "$RUNS" "$MARGIN" "$VNODE" <<'EOF'
import glob, json, statistics, sys
tmp, runs, margin, vnode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
benches = [json.load(open(f"{tmp}/bench-{i}.json")) for i in range(1, runs + 1)]
def median_ratio(key):
    return statistics.median(b["ratios"][key] for b in benches)
def median_case(name, depth, field):
    return statistics.median(next(c[field] for c in b["cases"] if c["name"] == name and c["depth"] == depth)
                             for b in benches)
rows = []  # (figure, value, bar, "<=" or ">=", detail)
rows.append(("P1 read p50 / ping-pong p50", median_ratio("read_p50_vs_tcp_pingpong"), 1.2, "<=",
             f"read {median_case('tessera_read', 1, 'p50_us'):.1f} us, "
             f"ping-pong {median_case('tcp_pingpong', 1, 'p50_us'):.1f} us"))
rows.append(("P2 batched reads / memcached", median_ratio("batched_read_vs_memcached_get"), 2.0, ">=",
             f"{median_case('tessera_read', 64, 'ops_per_s') / 1e3:.0f} k vs "
             f"{median_case('memcached_get', 64, 'ops_per_s') / 1e3:.0f} k ops/s"))
if vnode:
    for red in ("none", "ec:4+2"):
        lines = [json.loads(l) for l in open(f"{tmp}/vnode-{red}.jsonl") if l.strip()]
        pp = next(l for l in lines if l.get("kind") == "pingpong")["p50_ns"]
        uf = next(l for l in lines if l.get("kind") == "uffd-local")["p50_ns"]
        t = next((l for l in lines if l.get("system") == "tessera" and l.get("fault_p50_ns")), None)
        if t is None:
            print(f"check.sh: no remote fault figure for {red}", file=sys.stderr)
            sys.exit(2)
        rows.append((f"P3 fault p50 / (uffd + ping-pong), {red}", t["fault_p50_ns"] / (uf + pp), 1.2, "<=",
                     f"fault {t['fault_p50_ns'] / 1e3:.0f} us, uffd {uf / 1e3:.0f} us, ping-pong {pp / 1e3:.0f} us"))
failed = []
print(f"{'figure':44} {'value':>7} {'bar':>8}  verdict   ({runs} runs, noise margin {margin:.0%})")
for name, value, bar, op, detail in rows:
    ok = value <= bar * (1 + margin) if op == "<=" else value >= bar * (1 - margin)
    met = value <= bar if op == "<=" else value >= bar
    verdict = "met" if met else ("noise" if ok else "MISSED")
    print(f"{name:44} {value:7.2f} {op}{bar:6.2f}  {verdict:8}  {detail}")
    if not ok:
        failed.append(name.split()[0])
if failed:
    print("check.sh: missed by more than the noise margin: " + ", ".join(failed))
    sys.exit(1)
print("check.sh: every figure within its bar")
EOF
