// Log: Tessera's log lines — the daemons', and the library's warnings —
// written to spdlog's default logger (which main() sets up). Formats are
// fmt's, checked at compile time; the formatting itself happens in log.cc
// alone. Calling spdlog's templates instead makes every file that logs
// instantiate fmt's whole formatting engine: 18 s of compiling per file under
// ASan, against under a second this way.
//
// A library of its own (tessera_log), apart from tessera_common: the preload
// shim links common and must not load spdlog into the programs it runs in.
//
// Thread-safety: as spdlog's default logger, safe from any thread.
#pragma once

#include <fmt/core.h>

#include <string>

namespace tessera::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Sends every line to stderr (stdout is for what a command was asked to
// print), from `level` up: trace, debug, info, warn, error or off. Call once,
// before any thread logs.
void ToStderr(const std::string& level);

// Formats and writes one line, if the logger's level lets `level` through.
void Write(Level level, fmt::string_view format, fmt::format_args args);

template <typename... Args>
void Debug(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kDebug, format, fmt::make_format_args(args...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kInfo, format, fmt::make_format_args(args...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kWarn, format, fmt::make_format_args(args...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> format, Args&&... args) {
  Write(Level::kError, format, fmt::make_format_args(args...));
}

}  // namespace tessera::log
