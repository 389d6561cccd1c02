// The daemon subcommands: `tessera controller` and `tessera memnode` run one
// daemon in the foreground until SIGINT/SIGTERM.
#pragma once

#include "cmd/signals.h"
#include "controller/context.h"
#include "memnode/memnode.h"

namespace tessera::cmd {

int RunController(const controller::Options& options, SignalWaiter& signals);
int RunMemnode(const memnode::Options& options, SignalWaiter& signals);

}  // namespace tessera::cmd
