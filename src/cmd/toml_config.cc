#include "cmd/toml_config.h"

#include <charconv>
#include <sstream>
#include <variant>

#include <toml++/toml.h>

namespace tessera::cmd {
namespace {

// A scalar as the command line would spell it.
bool ScalarText(const toml::node& node, std::string* out) {
  if (auto s = node.as_string()) {
    *out = s->get();
  } else if (auto i = node.as_integer()) {
    *out = std::to_string(i->get());
  } else if (auto f = node.as_floating_point()) {
    std::ostringstream text;
    text << f->get();
    *out = text.str();
  } else if (auto b = node.as_boolean()) {
    *out = b->get() ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

std::string OptionName(std::string_view key) {
  std::string name(key);
  for (char& c : name) c = c == '_' ? '-' : c;
  return name;
}

// A value as TOML would hold it: numbers and booleans bare, the rest strings.
std::variant<int64_t, bool, std::string> Typed(const std::string& text) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return n;
  if (text == "true" || text == "false") return text == "true";
  return text;
}

}  // namespace

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& input) const {
  const std::vector<std::string> files = root_->get_config_ptr()->as<std::vector<std::string>>();
  const std::string file = files.empty() ? "the config file" : files.front();
  std::stringstream text;
  text << input.rdbuf();
  toml::table table;
  try {
    table = toml::parse(text.str());
  } catch (const toml::parse_error& e) {
    throw CLI::ConfigError(file + " is not TOML: line " + std::to_string(e.source().begin.line) + ", column " +
                           std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
  const auto running = root_->get_subcommands();
  const CLI::App* app = running.empty() ? root_ : running.front();
  std::vector<CLI::ConfigItem> items;
  for (auto&& [key, node] : table) {
    CLI::ConfigItem item;
    if (app != root_) item.parents = {app->get_name()};
    item.name = OptionName(key.str());
    const std::string where = file + ", line " + std::to_string(node.source().begin.line) + ": key '" +
                              std::string(key.str()) + "'";
    const CLI::Option* opt = app->get_option_no_throw("--" + item.name);
    if (opt == nullptr || !opt->get_configurable()) {
      throw CLI::ConfigError(where + " is not an option of '" + app->get_name() + "' (see its --help)");
    }
    std::string value;
    if (const toml::array* list = node.as_array()) {
      for (const toml::node& element : *list) {
        if (!ScalarText(element, &value)) throw CLI::ConfigError(where + ": a list of plain values was expected");
        item.inputs.push_back(value);
      }
    } else if (ScalarText(node, &value)) {
      item.inputs.push_back(value);
    } else {
      throw CLI::ConfigError(where + ": a value, not a table or a date, was expected");
    }
    items.push_back(std::move(item));
  }
  return items;
}

std::string TomlConfig::to_config(const CLI::App* app, bool default_also, bool write_description,
                                  std::string /*prefix*/) const {
  std::ostringstream out;
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || !opt->get_configurable() || opt == app->get_help_ptr() ||
        opt == app->get_config_ptr()) {
      continue;
    }
    std::vector<std::string> values = opt->results();
    if (values.empty() && default_also && !opt->get_default_str().empty()) values = {opt->get_default_str()};
    std::string key = opt->get_lnames().front();
    for (char& c : key) c = c == '-' ? '_' : c;
    if (write_description && !opt->get_description().empty()) out << "# " << opt->get_description() << "\n";
    if (values.empty()) {
      out << "# " << key << " =\n";
      continue;
    }
    toml::table line;
    if (opt->get_items_expected_max() > 1) {
      toml::array list;
      for (const std::string& v : values) std::visit([&](auto&& x) { list.push_back(x); }, Typed(v));
      line.insert_or_assign(key, std::move(list));
    } else {
      std::visit([&](auto&& x) { line.insert_or_assign(key, x); }, Typed(values.front()));
    }
    out << line << "\n";
  }
  return out.str();
}

}  // namespace tessera::cmd
