#include "cmd/run_file.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace tessera::cmd {

std::string RunFilePath() {
  if (const char* path = std::getenv("TESSERA_RUN_FILE"); path != nullptr && *path != '\0') return path;
  return "/tmp/tessera-" + std::to_string(getuid()) + "/up.json";
}

Status WriteRunFile(const std::string& controller_address) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(RunFilePath()).parent_path(), ec);
  std::ofstream f(RunFilePath(), std::ios::trunc);
  f << nlohmann::json{{"controller", controller_address}, {"pid", getpid()}}.dump() << "\n";
  if (!f) return Status(Code::kIoError, "cannot write " + RunFilePath());
  return Status::Ok();
}

void RemoveRunFile() {
  std::error_code ec;
  std::filesystem::remove(RunFilePath(), ec);
}

std::string ResolveController(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("TESSERA_CONTROLLER"); env != nullptr && *env != '\0') return env;
  std::ifstream f(RunFilePath());
  if (f) {
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_object() && j.contains("controller") && j.contains("pid") && j["pid"].is_number_integer() &&
        kill(j["pid"].get<pid_t>(), 0) == 0 && j["controller"].is_string()) {
      return j["controller"].get<std::string>();
    }
  }
  return "127.0.0.1:7070";
}

}  // namespace tessera::cmd
