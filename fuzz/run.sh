#!/usr/bin/env bash
# Runs every fuzz target in DIR for SECONDS each, from a fresh corpus seeded by
# the target's own seeds if any. Fails if any target finds a crash.
# Usage: fuzz/run.sh DIR SECONDS
set -euo pipefail
dir=$1
seconds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in "$dir"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  mkdir -p "$work/$name"
  echo "fuzz: $name for ${seconds}s"
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$work/$name/" "$work/$name" 2>"$work/$name.log" || {
    tail -50 "$work/$name.log"
    echo "fuzz: $name FAILED" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units" "$work/$name.log" | sed "s/^/fuzz: $name /"
done
