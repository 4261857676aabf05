#include "sslab/host/weights.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "sslab/error.h"
#include "sslab/host/checkpoint.h"

namespace fs = std::filesystem;

namespace sslab {

NamedTensors state_dict(torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters(true))
    if (p.value().defined()) out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).contiguous());
  for (const auto& b : m.named_buffers(true))
    if (b.value().defined()) out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).contiguous());
  return out;
}

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

NamedTensors from_checkpoint(CheckpointReader& reader, const std::string& component) {
  NamedTensors out;
  SSLAB_CHECK(reader.module_tensors("model/" + component, out), reader.file(), ": the checkpoint has no '", component,
              "' (set init_component to the name it has there)");
  return out;
}

// A .pt from `sslab export --format torch` (or Python's torch.save of a dict
// of tensors).
bool read_pickled_dict(const std::string& file, NamedTensors& out, std::string& why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(file, "cannot open it for reading");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::IValue v;
  try {
    v = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    why = first_line(e.what_without_backtrace());
    return false;
  } catch (const std::exception& e) {
    why = first_line(e.what());
    return false;
  }
  if (!v.isGenericDict()) {
    why = "it holds a " + v.tagKind() + ", not a dict of tensors";
    return false;
  }
  for (const auto& item : v.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      why = "it holds a dict whose entries are not all name -> tensor";
      return false;
    }
    out.emplace_back(item.key().toStringRef(), item.value().toTensor());
  }
  return true;
}

NamedTensors read_file(const std::string& file, const std::string& component) {
  if (looks_like_safetensors(file)) return load_safetensors(file).tensors;
  // An sslab checkpoint (a TorchScript-style archive with format_version)...
  std::string ckpt_why;
  try {
    CheckpointReader reader(file, torch::kCPU);
    return from_checkpoint(reader, component);
  } catch (const CheckpointFormatError&) {
    throw;
  } catch (const UserError& e) {
    ckpt_why = e.what();
    if (ckpt_why.rfind(file + ": ", 0) == 0) ckpt_why = ckpt_why.substr(file.size() + 2);
    if (ckpt_why.find("the checkpoint has no '") != std::string::npos) throw;
  }
  // ... or a pickled dict of tensors.
  NamedTensors out;
  std::string pickle_why;
  if (read_pickled_dict(file, out, pickle_why)) return out;
  throw DataError(file, sslab::str("not a safetensors file, an sslab checkpoint (", ckpt_why, ") or a dict of tensors (",
                            pickle_why, ")"));
}

}  // namespace

NamedTensors read_init_weights(const std::string& path, const std::string& component) {
  std::error_code ec;
  SSLAB_CHECK(fs::exists(path, ec), path, ": no such file or folder");
  if (!fs::is_directory(path, ec)) return read_file(path, component);
  const fs::path dir(path);
  if (fs::exists(dir / "sslab_export.json", ec)) {
    for (const char* ext : {".safetensors", ".pt"}) {
      fs::path f = dir / (component + ext);
      if (fs::exists(f, ec)) return read_file(f.string(), component);
    }
    std::string have;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string n = e.path().filename().string();
      if (n != "sslab_export.json") have += (have.empty() ? "" : ", ") + n;
    }
    throw UserError(sslab::str(path, ": the export has no ", component, ".safetensors or .pt (it has: ", have,
                        "); set init_component to the name it has there"));
  }
  if (fs::exists(dir / "checkpoints", ec) || fs::exists(dir / "recipe.toml", ec)) {
    std::ostringstream warnings;
    auto reader = open_latest_checkpoint(path, torch::kCPU, warnings);
    std::cerr << warnings.str();
    return from_checkpoint(*reader, component);
  }
  throw UserError(sslab::str(path, ": a folder that is neither an `sslab export` (no sslab_export.json) nor a run folder "
                            "(no checkpoints/)"));
}

std::pair<std::string, std::string> parse_rename(const std::string& text, const std::string& where) {
  auto eq = text.find('=');
  SSLAB_CHECK(eq != std::string::npos, where, ": '", text, "' is not a rename 'from=to' (e.g. 'module.=' strips 'module.')");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::string load_weights_into(torch::nn::Module& m, const NamedTensors& weights, const InitOptions& options,
                              const std::string& file, const std::string& where) {
  std::map<std::string, torch::Tensor> model;
  for (const auto& p : m.named_parameters(true)) model[p.key()] = p.value();
  for (const auto& b : m.named_buffers(true)) model[b.key()] = b.value();
  std::map<std::string, torch::Tensor> src;
  for (const auto& [name, t] : weights) {
    std::string n = name;
    for (const auto& [from, to] : options.renames) {
      if (n.rfind(from, 0) == 0) {
        n = to + n.substr(from.size());
        break;
      }
    }
    SSLAB_CHECK(src.emplace(n, t).second, where, ": ", file, " gives two tensors the name '", n,
                "' after init_map's renames");
  }
  std::vector<std::string> missing, unused;
  for (const auto& [name, t] : model)
    if (!src.count(name)) missing.push_back(name);
  for (const auto& [name, t] : src)
    if (!model.count(name)) unused.push_back(name);
  auto listing = [](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 5) out += sslab::str(", ... (", names.size(), " in all)");
    return out;
  };
  for (const auto& [name, t] : model) {
    auto it = src.find(name);
    if (it == src.end()) continue;
    SSLAB_CHECK(it->second.sizes() == t.sizes(), where, ": tensor '", name, "' is ", it->second.sizes(), " in ", file,
                " but ", t.sizes(), " in the model");
  }
  if (options.strict) {
    SSLAB_CHECK(missing.empty(), where, ": ", file, " lacks ", missing.size(), " of the model's ", model.size(),
                " tensors: ", listing(missing), " (init_map renames names; init_strict = false loads what matches)");
    SSLAB_CHECK(unused.empty(), where, ": ", file, " has ", unused.size(), " tensors the model has no place for: ",
                listing(unused), " (init_map renames names; init_strict = false ignores them)");
  }
  SSLAB_CHECK(missing.size() < model.size() || model.empty(), where, ": no tensor of ", file,
              " matches the model's names (the model has ", listing([&] {
                std::vector<std::string> n;
                for (const auto& [k, v] : model) n.push_back(k);
                return n;
              }()), "; the file ", listing(unused), "): set init_map");
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : model) {
      auto it = src.find(name);
      if (it == src.end()) continue;
      torch::Tensor target = t;
      target.copy_(it->second.to(target.device(), target.scalar_type()));
    }
  }
  std::string line = sslab::str(where, ": ", model.size() - missing.size(), " of ", model.size(), " tensors from ", file);
  if (!missing.empty()) line += sslab::str("; ", missing.size(), " kept their initialisation (", listing(missing), ")");
  if (!unused.empty()) line += sslab::str("; ", unused.size(), " in the file unused (", listing(unused), ")");
  return line;
}

}  // namespace sslab
