// TomlConfig: reads `--config FILE` for CLI11, in TOML (toml++). A daemon's
// file holds its flags by their long names — `listen = "0.0.0.0:7070"`,
// `etcd = ["10.0.0.1:2379", ...]`, `leader_ttl = 2` (dashes or underscores) —
// and sets the options of the subcommand being run; a flag also given on the
// command line wins over the file. A key that names no option, a value of a
// kind an option cannot take, or a file that is not TOML is an error that
// names the file, line and key. Writing (`--print-config`) gives the same
// format, with each option's help as a comment, to start a file from.
//
// Thread-safety: none needed (used while parsing the command line).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace tessera::cmd {

class TomlConfig final : public CLI::Config {
 public:
  // `root` is the main app, whose `--config` this reads: its keys are the
  // options of the subcommand being run.
  explicit TomlConfig(const CLI::App* root) : root_(root) {}

  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  const CLI::App* root_;
};

}  // namespace tessera::cmd
