// How the CLI finds a running cluster without flags: `tessera up` records its
// controller's address in a run file (/tmp/tessera-<uid>/up.json) with its
// pid ($TESSERA_RUN_FILE overrides the path); other subcommands use --controller if given, else $TESSERA_CONTROLLER,
// else the run file of a live `up`, else 127.0.0.1:7070.
#pragma once

#include <string>

#include "common/status.h"

namespace tessera::cmd {

std::string RunFilePath();
Status WriteRunFile(const std::string& controller_address);
void RemoveRunFile();
std::string ResolveController(const std::string& flag);

}  // namespace tessera::cmd
