#include "sslab/host/plugin_host.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sslab/error.h"
#include "sslab/plugin.h"

namespace fs = std::filesystem;

namespace sslab {

std::string host_torch_version() { return TORCH_VERSION; }
std::string host_api_version() {
  return str(SSLAB_API_VERSION_MAJOR, ".", SSLAB_API_VERSION_MINOR);
}

// "1.13.0" -> "1.13": plugins must match the host's LibTorch major.minor,
// whose C++ ABI differs between minor releases.
static std::string major_minor(const std::string& version) {
  auto first = version.find('.');
  if (first == std::string::npos) return version;
  auto second = version.find_first_of(".+", first + 1);
  return version.substr(0, second);
}

std::string PluginHost::default_plugin_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&host_torch_version), &info) && info.dli_fname) {
    fs::path lib = fs::weakly_canonical(fs::path(info.dli_fname));
    return (lib.parent_path() / "sslab" / "plugins").string();
  }
  return "";
}

std::vector<std::string> PluginHost::search_path(const std::vector<std::string>& extra) {
  std::vector<std::string> dirs(extra.begin(), extra.end());
  if (const char* env = std::getenv("SSLAB_PLUGIN_PATH")) {
    std::string s(env);
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  std::string def = default_plugin_dir();
  if (!def.empty()) dirs.push_back(def);
  return dirs;
}

static bool looks_like_path(const std::string& s) {
  return s.find('/') != std::string::npos || (s.size() > 3 && s.substr(s.size() - 3) == ".so");
}

const PluginRecord& PluginHost::load(const std::string& name_or_path, const std::vector<std::string>& extra_dirs,
                                     const std::string& base_dir) {
  if (looks_like_path(name_or_path)) {
    fs::path p(name_or_path);
    if (p.is_relative() && !base_dir.empty()) p = fs::path(base_dir) / p;
    SSLAB_CHECK(fs::exists(p), "plugin file '", p.string(), "' does not exist");
    return load_file(p.string());
  }
  for (const auto& rec : loaded_)
    if (rec.name == name_or_path) return rec;
  std::string file = "libsslab-" + name_or_path + ".so";
  std::vector<std::string> dirs = search_path(extra_dirs);
  for (const auto& d : dirs) {
    fs::path candidate = fs::path(d) / file;
    if (fs::exists(candidate)) return load_file(candidate.string());
  }
  std::string searched;
  for (const auto& d : dirs) searched += (searched.empty() ? "" : ", ") + d;
  throw UserError(str("plugin '", name_or_path, "' not found: no ", file, " in ",
                      searched.empty() ? std::string("any folder") : searched,
                      " (set SSLAB_PLUGIN_PATH or plugins.path)"));
}

const PluginRecord& PluginHost::load_file(const std::string& path_in) {
  std::string path = fs::weakly_canonical(fs::path(path_in)).string();
  for (const auto& rec : loaded_)
    if (rec.file == path) return rec;

  // RTLD_LOCAL keeps plugins' symbols apart; RTLD_NOW reports missing
  // symbols here rather than at first call. The handle is never closed:
  // objects made by the plugin (modules, factories) outlive any owner.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    throw UserError(str(path, ": not a loadable plugin: ", err ? err : "dlopen failed"));
  }
  dlerror();
  auto entry = reinterpret_cast<sslab_plugin_info_fn>(dlsym(handle, SSLAB_PLUGIN_ENTRY_SYMBOL));
  SSLAB_CHECK(entry, path, ": not an sslab plugin: it does not export ", SSLAB_PLUGIN_ENTRY_SYMBOL,
              "() (define it with SSLAB_PLUGIN)");
  const sslab_plugin_info_t* info = entry();
  SSLAB_CHECK(info, path, ": ", SSLAB_PLUGIN_ENTRY_SYMBOL, "() returned no descriptor");
  SSLAB_CHECK(info->api_major == SSLAB_API_VERSION_MAJOR && info->api_minor <= SSLAB_API_VERSION_MINOR, path,
              ": plugin API version ", info->api_major, ".", info->api_minor,
              " is not compatible with this sslab's plugin API version ", host_api_version(), "; rebuild the plugin");
  SSLAB_CHECK(info->struct_size >= sizeof(sslab_plugin_info_t), path, ": plugin descriptor is ", info->struct_size,
              " bytes, expected at least ", sizeof(sslab_plugin_info_t), "; rebuild the plugin");
  std::string torch_version = info->torch_version ? info->torch_version : "unknown";
  SSLAB_CHECK(major_minor(torch_version) == major_minor(TORCH_VERSION), path, ": plugin was built against LibTorch ",
              torch_version, " but this sslab uses LibTorch ", TORCH_VERSION, "; rebuild the plugin");
  SSLAB_CHECK(info->name && *info->name, path, ": plugin descriptor has no name");
  SSLAB_CHECK(info->register_components, path, ": plugin descriptor has no register callback");
  std::string name = info->name;
  for (const auto& rec : loaded_) {
    SSLAB_CHECK(rec.name != name, path, ": a plugin named '", name, "' is already loaded from ", rec.file);
  }

  Registrar registrar(name, path);
  char error[1024] = {0};
  int status = info->register_components(reinterpret_cast<sslab_registrar*>(&registrar), error, sizeof(error));
  SSLAB_CHECK(status == 0, path, ": plugin '", name, "' failed to register its components: ",
              error[0] ? error : "no message");
  PluginRecord rec;
  rec.name = name;
  rec.version = info->version ? info->version : "";
  rec.description = info->description ? info->description : "";
  rec.file = path;
  rec.components = registrar.staged();
  rec.commands = registrar.staged_commands();
  registrar.commit(registries_);
  rec.loaded = true;
  loaded_.push_back(std::move(rec));
  return loaded_.back();
}

std::vector<PluginRecord> PluginHost::discover(const std::vector<std::string>& extra_dirs) {
  std::vector<PluginRecord> out;
  std::vector<std::string> seen;
  for (const auto& dir : search_path(extra_dirs)) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string fname = e.path().filename().string();
      if (fname.rfind("libsslab-", 0) == 0 && fname.size() > 12 && fname.substr(fname.size() - 3) == ".so")
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string canon = fs::weakly_canonical(f).string();
      if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
      seen.push_back(canon);
      try {
        out.push_back(load_file(canon));
      } catch (const std::exception& e) {
        PluginRecord rec;
        rec.file = canon;
        std::string stem = f.filename().string();
        rec.name = stem.substr(9, stem.size() - 12);
        rec.refusal = e.what();
        out.push_back(std::move(rec));
      }
    }
  }
  return out;
}

}  // namespace sslab
