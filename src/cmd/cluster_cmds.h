// The operator subcommands: `tessera up` (a local cluster in the foreground),
// `tessera status` and `tessera region create|ls|rm`. Each returns the
// process exit code and explains failures on stderr.
#pragma once

#include <cstdint>
#include <string>

#include "cmd/local_cluster.h"
#include "cmd/signals.h"
#include "tessera/client.h"

namespace tessera::cmd {

int RunUp(const LocalClusterOptions& options, SignalWaiter& signals);
int RunStatus(const std::string& controller, bool json);
int RunRegionCreate(const std::string& controller, const std::string& name, const std::string& size,
                    const RegionOptions& options);
int RunRegionList(const std::string& controller, bool json);
int RunRegionRemove(const std::string& controller, const std::string& name);

}  // namespace tessera::cmd
