#include "spm_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include <sslab/error.h>

namespace sslab::text {

namespace fs = std::filesystem;

namespace {

std::string this_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&this_library_dir), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return "";
}

}  // namespace

SpmLibrary::SpmLibrary() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("SSLAB_TEXT_SPM_SHIM"); env && *env) candidates.push_back(env);
  std::string dir = this_library_dir();
  if (!dir.empty()) candidates.push_back((fs::path(dir) / "sslab_text_spm.so").string());
#ifdef SSLAB_TEXT_SPM_SHIM_BUILD_PATH
  candidates.push_back(SSLAB_TEXT_SPM_SHIM_BUILD_PATH);
#endif
  std::string tried;
  void* handle = nullptr;
  for (const auto& c : candidates) {
    if (!fs::exists(c)) {
      tried += " " + c + " (absent)";
      continue;
    }
    handle = dlmopen(LM_ID_NEWLM, c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      file = c;
      break;
    }
    const char* e = dlerror();
    tried += " " + c + " (" + (e ? e : "dlmopen failed") + ")";
  }
  if (!handle) throw UserError("text plugin: cannot load its SentencePiece shim sslab_text_spm.so; tried:" + tried);
  auto sym = [&](const char* name) {
    void* p = dlsym(handle, name);
    if (!p) throw UserError(str(file, ": missing symbol ", name));
    return p;
  };
  load = reinterpret_cast<decltype(load)>(sym("sslab_spm_load"));
  free = reinterpret_cast<decltype(free)>(sym("sslab_spm_free"));
  encode = reinterpret_cast<decltype(encode)>(sym("sslab_spm_encode"));
  decode = reinterpret_cast<decltype(decode)>(sym("sslab_spm_decode"));
  piece_size = reinterpret_cast<decltype(piece_size)>(sym("sslab_spm_piece_size"));
  piece_to_id = reinterpret_cast<decltype(piece_to_id)>(sym("sslab_spm_piece_to_id"));
  id_to_piece = reinterpret_cast<decltype(id_to_piece)>(sym("sslab_spm_id_to_piece"));
  train = reinterpret_cast<decltype(train)>(sym("sslab_spm_train"));
}

const SpmLibrary& SpmLibrary::get() {
  static const SpmLibrary library;  // thread-safe initialisation; never unloaded
  return library;
}

}  // namespace sslab::text
