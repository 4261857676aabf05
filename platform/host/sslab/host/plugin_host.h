// The plugin host: finds, checks and loads plugins into the registries.
#pragma once

#include <string>
#include <vector>

#include "sslab/export.h"
#include "sslab/registry.h"

namespace sslab {

struct PluginRecord {
  std::string name;         // from the descriptor ("" if refused before reading it)
  std::string version;
  std::string description;
  std::string file;         // absolute path
  bool loaded = false;
  std::string refusal;      // one line, when not loaded
  std::vector<std::pair<ComponentKind, std::string>> components;
  std::vector<std::string> commands;  // subcommands of `sslab` it adds
};

class SSLAB_API PluginHost {
 public:
  explicit PluginHost(Registries& registries = Registries::global()) : registries_(registries) {}

  // Folders searched for libsslab-<name>.so, in order: `extra` (e.g. from the
  // recipe), then $SSLAB_PLUGIN_PATH (colon-separated), then the plugin folder
  // of this installation (<libdir>/sslab/plugins).
  static std::vector<std::string> search_path(const std::vector<std::string>& extra = {});
  static std::string default_plugin_dir();

  // Loads a plugin by name ("vision") or by path ("./libsslab-x.so",
  // relative paths against `base_dir`). Throws UserError naming the file on any
  // refusal. Loading the same file twice is a no-op.
  const PluginRecord& load(const std::string& name_or_path, const std::vector<std::string>& extra_dirs = {},
                           const std::string& base_dir = "");
  // Loads a plugin file; throws UserError naming it on refusal.
  const PluginRecord& load_file(const std::string& path);

  // Tries every libsslab-*.so on the search path; never throws for a bad
  // plugin: refused ones are returned with their reason.
  std::vector<PluginRecord> discover(const std::vector<std::string>& extra_dirs = {});

  const std::vector<PluginRecord>& loaded() const { return loaded_; }

 private:
  Registries& registries_;
  std::vector<PluginRecord> loaded_;
};

// The host's own LibTorch version and plugin API version, for messages.
SSLAB_API std::string host_torch_version();
SSLAB_API std::string host_api_version();

}  // namespace sslab
