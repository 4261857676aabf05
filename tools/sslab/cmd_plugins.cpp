// sslab plugins: every discoverable plugin and every name it registers.
#include <boost/program_options.hpp>

#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "sslab/host/plugin_host.h"
#include "sslab/registry.h"

namespace po = boost::program_options;

namespace sslab::cli {

int cmd_plugins(const Args& args) {
  po::options_description opts("sslab plugins [options]");
  bool json = false;
  std::vector<std::string> dirs;
  opts.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print JSON")(
      "path", po::value(&dirs), "extra folder to search (repeatable)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts << "\nPlugins are searched in --path folders, $SSLAB_PLUGIN_PATH, then "
              << PluginHost::default_plugin_dir() << "\n";
    return 0;
  }
  Registries& reg = Registries::global();
  PluginHost host(reg);
  std::vector<PluginRecord> records = host.discover(dirs);

  auto doc_of = [&](ComponentKind kind, const std::string& name) {
    const ComponentInfo* info = reg.find(kind, name);
    return info ? info->doc : std::string();
  };
  // Components libsslab itself registers (ssl.*), usable without loading a plugin.
  std::vector<std::pair<ComponentKind, std::string>> builtins;
  for (ComponentKind kind : all_kinds())
    for (const auto& name : reg.names(kind))
      if (reg.find(kind, name)->plugin == "sslab") builtins.emplace_back(kind, name);
  if (json) {
    auto component = [&](ComponentKind kind, const std::string& name) {
      return nlohmann::ordered_json{{"kind", kind_name(kind)}, {"name", name}, {"doc", doc_of(kind, name)}};
    };
    nlohmann::ordered_json out = {{"api_version", host_api_version()}, {"torch_version", host_torch_version()}};
    out["builtins"] = nlohmann::ordered_json::array();
    for (const auto& [kind, name] : builtins) out["builtins"].push_back(component(kind, name));
    out["plugins"] = nlohmann::ordered_json::array();
    for (const auto& r : records) {
      nlohmann::ordered_json p = {{"name", r.name}, {"file", r.file}, {"loaded", r.loaded}};
      if (r.loaded) {
        p["version"] = r.version;
        p["description"] = r.description;
        p["components"] = nlohmann::ordered_json::array();
        for (const auto& [kind, name] : r.components) p["components"].push_back(component(kind, name));
        p["commands"] = nlohmann::ordered_json::array();
        for (const auto& name : r.commands) {
          const CommandEntry* c = reg.find_command(name);
          p["commands"].push_back({{"name", name}, {"doc", c ? c->doc : std::string()}});
        }
      } else {
        p["refused"] = r.refusal;
      }
      out["plugins"].push_back(std::move(p));
    }
    std::cout << out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::cout << "sslab plugin API " << host_api_version() << ", LibTorch " << host_torch_version() << "\n";
  auto print_components = [&](const std::vector<std::pair<ComponentKind, std::string>>& components) {
    for (const auto& [kind, name] : components) {
      std::string k = kind_name(kind);
      std::cout << "    " << k << std::string(11 - std::min<size_t>(10, k.size()), ' ') << name;
      std::string pad(name.size() < 28 ? 28 - name.size() : 1, ' ');
      std::cout << pad << doc_of(kind, name) << "\n";
    }
  };
  if (!builtins.empty()) {
    std::cout << "\nbuilt-in (libsslab)\n    joint-embedding heads, objectives and evaluators for any modality\n";
    print_components(builtins);
  }
  if (records.empty()) {
    std::cout << "no plugins found in:";
    for (const auto& d : PluginHost::search_path(dirs)) std::cout << " " << d;
    std::cout << "\n";
  }
  for (const auto& r : records) {
    if (!r.loaded) {
      std::cout << "\n" << r.name << "  REFUSED  " << r.file << "\n    " << r.refusal << "\n";
      continue;
    }
    std::cout << "\n" << r.name << " " << r.version << "  " << r.file << "\n    " << r.description << "\n";
    print_components(r.components);
    for (const auto& name : r.commands) {
      const CommandEntry* c = reg.find_command(name);
      std::cout << "    command    sslab " << name;
      std::string pad(name.size() < 22 ? 22 - name.size() : 1, ' ');
      std::cout << pad << (c ? c->doc : std::string()) << "\n";
    }
  }
  return 0;
}

}  // namespace sslab::cli
