// sslab export / sslab embed: a trained run's encoders and heads, and its
// embeddings, out to the Python ecosystem (docs/interop.md).

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <torch/version.h>

#include "args.h"
#include "commands.h"
#include "loaded_run.h"
#include "sha256.h"
#include "sslab/evaluation.h"
#include "sslab/host/checkpoint.h"
#include "sslab/host/json.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/safetensors.h"
#include "sslab/host/trainer.h"
#include "sslab/host/weights.h"
#include "sslab/registry.h"

namespace fs = std::filesystem;

namespace sslab::cli {

namespace {

// A component's resolved settings (the recipe's values and the defaults the
// run used) as JSON.
nlohmann::ordered_json settings_json(const Config& cfg) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const KeySpec& k : cfg.schema().keys()) {
    if (!cfg.has(k.name) && std::holds_alternative<std::monostate>(k.default_value)) continue;
    switch (k.type) {
      case ValueType::Integer: out[k.name] = cfg.get_int(k.name); break;
      case ValueType::Float: out[k.name] = cfg.get_float(k.name); break;
      case ValueType::Boolean: out[k.name] = cfg.get_bool(k.name); break;
      case ValueType::String: out[k.name] = cfg.get_string(k.name); break;
      case ValueType::IntArray: out[k.name] = cfg.get_ints(k.name); break;
      case ValueType::FloatArray: out[k.name] = cfg.get_floats(k.name); break;
      case ValueType::StringArray: out[k.name] = cfg.get_strings(k.name); break;
      default: break;  // nested tables: not part of a model's settings
    }
  }
  return out;
}

void write_npy(const std::string& file, const torch::Tensor& t) {
  const char* descr = t.scalar_type() == torch::kFloat32 ? "<f4" : t.scalar_type() == torch::kInt64 ? "<i8" : nullptr;
  SSLAB_ASSERT(descr, "write_npy: unsupported dtype ", t.scalar_type());
  torch::Tensor c = t.contiguous();
  std::string shape = "(";
  for (int64_t d = 0; d < c.dim(); ++d) shape += std::to_string(c.size(d)) + (c.dim() == 1 || d + 1 < c.dim() ? "," : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, '\n'
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  out.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
  write_file_atomic(file, out);
}

// Concatenates per-batch tensors along dim 0, zero-padding the other
// dimensions to the largest (token ids and masks of batches padded to
// different lengths).
torch::Tensor cat_padded(const std::vector<torch::Tensor>& parts) {
  std::vector<int64_t> size = parts.at(0).sizes().vec();
  bool same = true;
  for (const auto& p : parts) {
    if (p.dim() != static_cast<int64_t>(size.size())) return {};
    for (int64_t d = 1; d < p.dim(); ++d) {
      same &= p.size(d) == size[static_cast<size_t>(d)];
      size[static_cast<size_t>(d)] = std::max(size[static_cast<size_t>(d)], p.size(d));
    }
  }
  if (same) return torch::cat(parts, 0);
  std::vector<torch::Tensor> padded;
  for (const auto& p : parts) {
    std::vector<int64_t> pad;
    for (int64_t d = p.dim() - 1; d >= 1; --d) {
      pad.push_back(0);
      pad.push_back(size[static_cast<size_t>(d)] - p.size(d));
    }
    padded.push_back(torch::constant_pad_nd(p, pad, 0));
  }
  return torch::cat(padded, 0);
}

}  // namespace

int cmd_export(const Args& args) {
  po::options_description opts("sslab export RUN_DIR [options]");
  std::string run_dir, out, format = "safetensors";
  int64_t step = 0;
  opts.add_options()("help,h", "show this help")(
      "format", po::value(&format)->default_value("safetensors"),
      "safetensors (Hugging Face's format; Python reads it without sslab) or torch (a dict of tensors that "
      "Python's torch.load reads)")("step", po::value(&step), "export this checkpoint's step (default: the newest readable)")(
      "out", po::value(&out), "folder to write (default: RUN_DIR/export)")("run", po::value(&run_dir), "run folder");
  po::variables_map vm;
  if (!parse_args(args, opts, "run", vm)) return 0;
  if (run_dir.empty()) throw po::error("a run folder is required");
  if (format != "safetensors" && format != "torch")
    throw po::error("unknown --format '" + format + "'; " + suggestion_text(format, {"safetensors", "torch"}));
  if (step < 0) throw po::error("--step must be positive");
  LoadedRun run(run_dir, step);
  if (out.empty()) out = (fs::path(run_dir) / "export").string();
  std::error_code ec;
  fs::create_directories(out, ec);
  SSLAB_CHECK(!ec, out, ": cannot create the folder (", ec.message(), ")");

  const std::string recipe_text = run.recipe.to_toml();
  nlohmann::ordered_json index;
  index["format"] = "sslab-export";
  index["format_version"] = 1;
  index["sslab_version"] = kSslabVersion;
  index["libtorch_version"] = TORCH_VERSION;
  index["recipe_name"] = run.recipe.name();
  index["recipe_sha256"] = sha256_hex(recipe_text);
  index["run"] = fs::absolute(run_dir).lexically_normal().string();
  index["checkpoint"] = fs::path(run.checkpoint).filename().string();
  index["step"] = run.step;
  index["weights_format"] = format;
  nlohmann::ordered_json components = nlohmann::ordered_json::object();
  const Registries& reg = Registries::global();
  BuildContext& ctx = run.exp->context();
  struct Part {
    std::string kind, name;
    torch::nn::Module* module;
    ComponentKind ck;
    const char* section;
  };
  std::vector<Part> parts;
  for (const auto& n : ctx.encoder_names()) parts.push_back({"encoder", n, ctx.encoder(n).get(), ComponentKind::Encoder, "encoders"});
  for (const auto& n : ctx.head_names()) parts.push_back({"head", n, ctx.head(n).get(), ComponentKind::Head, "heads"});
  SSLAB_CHECK(!parts.empty(), run_dir, ": the run has no encoders or heads to export");
  for (const Part& p : parts) {
    const std::string id = std::string(p.section) + "." + p.name;
    RecipeNode node = run.recipe.at(p.section).child(p.name);
    Config cfg = component_config(node, p.ck, reg);
    NamedTensors tensors = state_dict(*p.module);
    const std::string file = id + (format == "safetensors" ? ".safetensors" : ".pt");
    const std::string path = (fs::path(out) / file).string();
    if (format == "safetensors") {
      save_safetensors(path, tensors,
                       {{"format", "pt"}, {"sslab.component", id}, {"sslab.type", node.required_string("type")}});
    } else {
      c10::Dict<std::string, torch::Tensor> dict;
      for (const auto& [n, t] : tensors) dict.insert(n, t);
      std::vector<char> bytes = torch::pickle_save(dict);
      write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
    }
    int64_t parameters = 0;
    for (const auto& t : p.module->parameters(true)) parameters += t.numel();
    nlohmann::ordered_json c;
    c["kind"] = p.kind;
    c["name"] = p.name;
    c["type"] = node.required_string("type");
    if (p.ck == ComponentKind::Encoder) {
      const Encoder& enc = *ctx.encoder(p.name);
      c["input"] = enc.input();
      c["embed_dim"] = enc.embed_dim();
    }
    c["file"] = file;
    c["tensors"] = tensors.size();
    c["parameters"] = parameters;
    nlohmann::ordered_json settings = settings_json(cfg);
    for (const char* k : {"init", "init_component", "init_strict", "init_map"}) settings.erase(k);
    c["settings"] = settings;
    components[id] = c;
    std::cout << "wrote " << path << " (" << tensors.size() << " tensors, " << parameters << " parameters)\n";
  }
  index["components"] = components;
  const std::string index_file = (fs::path(out) / "sslab_export.json").string();
  write_file_atomic(index_file, index.dump(2) + "\n");
  std::cout << "wrote " << index_file << " (step " << run.step << " of " << run_dir << ")\n";
  return 0;
}

int cmd_embed(const Args& args) {
  po::options_description opts("sslab embed RUN_DIR --out FILE.npy|FILE.safetensors [options]");
  std::string run_dir, out, split = "test", encoder;
  int64_t step = 0, limit = 0, batch_size = 64;
  bool with_inputs = false;
  opts.add_options()("help,h", "show this help")("split", po::value(&split)->default_value("test"),
                                                 "the dataset split to embed (a [data.<split>] of the recipe)")(
      "encoder", po::value(&encoder), "the encoder (default: the recipe's only one)")(
      "out", po::value(&out),
      "FILE.npy: the embeddings [N, D] float32, with FILE.index.npy and FILE.<label key>.npy beside it; "
      "FILE.safetensors: all of them in one file")("step", po::value(&step), "use this checkpoint's step (default: the newest readable)")(
      "limit", po::value(&limit), "embed only the first N samples (default: all)")(
      "batch-size", po::value(&batch_size)->default_value(64), "samples per batch")(
      "with-inputs", po::bool_switch(&with_inputs),
      "also store the batch tensors the encoder was given, as inputs.<key> (safetensors only), to check a "
      "reimplementation against sslab")("run", po::value(&run_dir), "run folder");
  po::variables_map vm;
  if (!parse_args(args, opts, "run", vm)) return 0;
  if (run_dir.empty()) throw po::error("a run folder is required");
  if (out.empty()) throw po::error("--out FILE.npy or FILE.safetensors is required");
  const bool npy = out.size() > 4 && out.substr(out.size() - 4) == ".npy";
  const bool st = out.size() > 12 && out.substr(out.size() - 12) == ".safetensors";
  if (!npy && !st) throw po::error("--out must end in .npy or .safetensors, got '" + out + "'");
  if (with_inputs && !st) throw po::error("--with-inputs needs a .safetensors output");
  if (limit < 0 || batch_size < 1 || step < 0) throw po::error("--limit, --batch-size and --step must be positive");
  LoadedRun run(run_dir, step);
  BuildContext& ctx = run.exp->context();
  if (!ctx.has_dataset(split)) {
    std::vector<std::string> splits;
    RecipeNode data = run.recipe.at("data");
    if (data.exists()) splits = data.keys();
    std::string list;
    for (const auto& s : splits) list += (list.empty() ? "" : ", ") + s;
    throw UserError(sslab::str(run_dir, ": the recipe has no [data.", split, "] (it has: ", list.empty() ? "none" : list, ")"));
  }
  const std::string who = "sslab embed";
  ProbeTarget target(ctx, encoder, false, who);
  const FeatureSpec feature = target.features().at(0);
  const Dataset& data = *ctx.dataset(split, who);
  std::vector<torch::Tensor> embeddings;
  std::map<std::string, std::vector<torch::Tensor>> labels, inputs;
  int64_t done = 0;
  const int64_t total = limit > 0 ? std::min(limit, data.size()) : data.size();
  SSLAB_CHECK(total > 0, run_dir, ": [data.", split, "] is empty");
  torch::NoGradGuard no_grad;
  for_each_batch(data, limit, batch_size, [&](const Batch& batch) {
    embeddings.push_back(feature.fn(batch.to(ctx.device())).to(torch::kCPU, torch::kFloat32));
    for (const auto& [key, t] : batch.tensors) {
      if (key == "label" || key.rfind("label.", 0) == 0) labels[key].push_back(t.to(torch::kCPU));
      if (with_inputs && t.dim() >= 1 && t.size(0) == batch.size) inputs[key].push_back(t.to(torch::kCPU));
    }
    done += batch.size;
    if (total >= 4 * batch_size) std::cerr << "\rembedded " << done << " / " << total << std::flush;
  });
  if (total >= 4 * batch_size) std::cerr << "\n";
  torch::Tensor x = torch::cat(embeddings, 0);
  torch::Tensor index = torch::arange(x.size(0), torch::kInt64);
  NamedTensors all = {{"embeddings", x}, {"index", index}};
  for (const auto& [key, parts] : labels) {
    torch::Tensor y = cat_padded(parts);
    if (y.defined()) all.emplace_back(key, y.is_floating_point() ? y.to(torch::kFloat32) : y.to(torch::kInt64));
  }
  if (st) {
    for (const auto& [key, parts] : inputs) {
      torch::Tensor t = cat_padded(parts);
      if (t.defined()) all.emplace_back("inputs." + key, t);
    }
    save_safetensors(out, all,
                     {{"sslab.run", run_dir}, {"sslab.split", split}, {"sslab.encoder", target.name()},
                      {"sslab.step", std::to_string(run.step)}});
    std::cout << "wrote " << out << " (" << x.size(0) << " x " << x.size(1) << " embeddings";
    for (size_t i = 1; i < all.size(); ++i) std::cout << ", " << all[i].first;
    std::cout << ")\n";
  } else {
    const std::string stem = out.substr(0, out.size() - 4);
    write_npy(out, x);
    std::cout << "wrote " << out << " (" << x.size(0) << " x " << x.size(1) << " embeddings of " << target.name()
              << ", " << split << " split, step " << run.step << ")\n";
    for (size_t i = 1; i < all.size(); ++i) {
      const std::string file = stem + "." + all[i].first + ".npy";
      write_npy(file, all[i].second);
      std::cout << "wrote " << file << "\n";
    }
  }
  return 0;
}

}  // namespace sslab::cli
