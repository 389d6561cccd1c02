#!/usr/bin/env bash
# Fails when a component includes a header from a component above it.
# The order, lowest first: common <- proto <- net <- {memnode, controller, client},
# common <- ctlplane <- {memnode, controller},
# and common <- ec <- {controller, client}
# <- client <- vnode <- preload; <- bench <- cmd. memnode, controller and client may not
# include each other.
set -euo pipefail
root=${1:-.}
declare -A allowed=(
  [common]="common"
  [ctlplane]="common ctlplane"
  [proto]="common proto"
  [net]="common proto net"
  [ec]="common ec"
  [memnode]="common proto net ctlplane memnode"
  [controller]="common proto net ec ctlplane controller"
  [client]="common proto net ec client tessera"
  [vnode]="common net tessera vnode"
  [preload]="common tessera vnode preload"
)
status=0
for comp in "${!allowed[@]}"; do
  dir="$root/src/$comp"
  [ -d "$dir" ] || continue
  while IFS=: read -r file line inc; do
    top=${inc%%/*}
    ok=0
    for a in ${allowed[$comp]}; do [ "$top" = "$a" ] && ok=1; done
    if [ $ok = 0 ]; then
      echo "layering violation: $file:$line includes \"$inc\" ($comp may include only: ${allowed[$comp]})" >&2
      status=1
    fi
  done < <(grep -rnoE '^#include "[^"]+"' "$dir" | sed -E 's/#include "([^"]+)"/\1/')
done
exit $status
