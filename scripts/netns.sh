#!/usr/bin/env bash
# Several hosts on one machine, for multi-host tests and trying a cluster by
# hand: each host is a network namespace with one interface (eth0) and its own
# address on a private subnet; they are joined by a bridge in a namespace of
# their own (PREFIX-sw). The machine's own namespace is not touched: all of
# the hosts' traffic stays on the addresses made here. Needs root.
#
#   scripts/netns.sh up PREFIX HOST...     makes PREFIX-HOST for each HOST and prints
#                                          "HOST ADDRESS" lines (10.213.0.1, .2, ...)
#   scripts/netns.sh down PREFIX           deletes every PREFIX-* namespace
#   scripts/netns.sh cut PREFIX HOST       cuts HOST's link at the bridge: its packets
#                                          are dropped, nothing is refused or reset
#   scripts/netns.sh restore PREFIX HOST   puts it back
#   scripts/netns.sh exec PREFIX HOST CMD...
#
# HOST names: lower-case letters and digits, at most 12 (they name the
# bridge's ports). SUBNET (default 10.213.0) picks the /24.
set -euo pipefail

die() { echo "netns.sh: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 prefix=$2
shift 2
[[ $prefix =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "bad PREFIX '$prefix' (lower-case letters, digits, '-')"
[ "$(id -u)" = 0 ] || die "network namespaces need root"
command -v ip >/dev/null || die "'ip' (iproute2) is not installed: apt-get install iproute2"
subnet=${SUBNET:-10.213.0}
sw=$prefix-sw

up() {
  [ $# -ge 1 ] || die "up: name at least one host"
  [ $# -le 250 ] || die "up: at most 250 hosts"
  ip netns list | grep -q "^$sw\b" && die "namespaces '$prefix-*' exist already (netns.sh down $prefix)"
  for h in "$@"; do
    [[ $h =~ ^[a-z0-9]{1,12}$ ]] || die "bad HOST '$h' (lower-case letters and digits, at most 12)"
  done
  # A half-built set is taken down again.
  trap 'down >/dev/null 2>&1 || true' ERR
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  ip -n "$sw" link set lo up
  local i=0
  for h in "$@"; do
    i=$((i + 1))
    local ns=$prefix-$h addr=$subnet.$i
    ip netns add "$ns"
    ip link add eth0 netns "$ns" type veth peer name "$h" netns "$sw"
    ip -n "$sw" link set "$h" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    echo "$h $addr"
  done
  trap - ERR
}

down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$prefix-" || true); do
    ip netns del "$ns"
  done
}

host_link() {
  [ $# -eq 1 ] || die "$cmd: name one host"
  ip -n "$sw" link show "$1" >/dev/null 2>&1 || die "no host '$1' under '$prefix'"
}

case $cmd in
  up) up "$@" ;;
  down) down ;;
  cut) host_link "$@"; ip -n "$sw" link set "$1" down ;;
  restore) host_link "$@"; ip -n "$sw" link set "$1" up ;;
  exec)
    [ $# -ge 2 ] || die "exec: name a host and a command"
    h=$1
    shift
    exec ip netns exec "$prefix-$h" "$@"
    ;;
  *) usage ;;
esac
