#include "sslab/components.h"

namespace sslab {

const torch::Tensor& Batch::at(const std::string& key) const {
  auto it = tensors.find(key);
  if (it == tensors.end()) {
    std::vector<std::string> keys;
    for (const auto& kv : tensors) keys.push_back(kv.first);
    throw UserError(str("the batch has no '", key, "'; ", suggestion_text(key, keys)));
  }
  return it->second;
}

Batch Batch::to(const torch::Device& device, bool non_blocking) const {
  Batch out;
  out.size = size;
  for (const auto& [k, v] : tensors) out.tensors[k] = v.to(device, non_blocking);
  return out;
}

Batch select_view(const Batch& batch, const std::string& key, int view) {
  std::string vkey = key + "@" + std::to_string(view);
  SSLAB_CHECK(batch.has(vkey), "batch has no view '", vkey, "' of '", key, "': add `[views] ", key,
              " = 2` (and transforms for ", key, "@0, ", key, "@1 or ", key, "@*) to the recipe");
  Batch out = batch;
  for (const char* suffix : {"", ".length", ".mask"}) {
    auto it = batch.tensors.find(vkey + suffix);
    if (it != batch.tensors.end()) out.tensors[key + suffix] = it->second;
  }
  return out;
}

template <typename T>
static std::shared_ptr<T> lookup(const std::map<std::string, std::shared_ptr<T>>& m, const std::string& name,
                                 const std::string& what, const std::string& where) {
  auto it = m.find(name);
  if (it != m.end()) return it->second;
  std::vector<std::string> known;
  for (const auto& kv : m) known.push_back(kv.first);
  throw UserError(str(where.empty() ? "" : where + ": ", "no ", what, " named '", name, "'; ",
                      suggestion_text(name, known)));
}

BuildContext::BuildContext(const Recipe& recipe, const Registries& registries)
    : recipe_(recipe), registries_(registries) {}
BuildContext::~BuildContext() = default;

std::shared_ptr<Dataset> BuildContext::dataset(const std::string& split, const std::string& where) const {
  return lookup(datasets_, split, "dataset split", where);
}
std::shared_ptr<Encoder> BuildContext::encoder(const std::string& name, const std::string& where) const {
  return lookup(encoders_, name, "encoder", where);
}
std::shared_ptr<Head> BuildContext::head(const std::string& name, const std::string& where) const {
  return lookup(heads_, name, "head", where);
}
std::shared_ptr<Tokenizer> BuildContext::tokenizer(const std::string& name, const std::string& where) const {
  return lookup(tokenizers_, name, "tokenizer", where);
}

template <typename M>
static std::vector<std::string> keys_of(const M& m) {
  std::vector<std::string> out;
  for (const auto& kv : m) out.push_back(kv.first);
  return out;
}
std::vector<std::string> BuildContext::encoder_names() const { return keys_of(encoders_); }
std::vector<std::string> BuildContext::dataset_names() const { return keys_of(datasets_); }
std::vector<std::string> BuildContext::head_names() const { return keys_of(heads_); }

std::shared_ptr<Encoder> BuildContext::fresh_encoder(const std::string& name, uint64_t seed,
                                                     const std::string& where) const {
  encoder(name, where);  // the usual "no encoder named" error
  auto it = builders_.find("encoders." + name);
  SSLAB_ASSERT(it != builders_.end(), "no builder for encoder ", name);
  torch::manual_seed(seed);
  auto enc = std::dynamic_pointer_cast<Encoder>(it->second());
  SSLAB_ASSERT(enc, "the builder of encoder ", name, " made no Encoder");
  enc->to(device_);
  return enc;
}

std::shared_ptr<torch::nn::Module> BuildContext::ema_target(const std::string& name, const EmaOptions& options,
                                                            const std::string& where) {
  const std::string at = where.empty() ? "" : where + ": ";
  SSLAB_CHECK(options.momentum >= 0 && options.momentum <= 1, at, "EMA momentum must be in [0, 1], got ",
              options.momentum);
  SSLAB_CHECK(options.schedule == "constant" || options.schedule == "cosine", at,
              "EMA schedule must be \"constant\" or \"cosine\", got \"", options.schedule, "\"");
  auto it = ema_targets_.find(name);
  if (it != ema_targets_.end()) return it->second.target;
  std::shared_ptr<torch::nn::Module> online;
  if (encoders_.count(name)) online = encoders_.at(name);
  else if (heads_.count(name)) online = heads_.at(name);
  auto builder = builders_.find(name);
  if (!online || builder == builders_.end()) {
    std::vector<std::string> known = keys_of(encoders_);
    for (const auto& h : keys_of(heads_)) known.push_back(h);
    throw UserError(str(at, "no encoder or head named '", name, "' for an EMA target; ", suggestion_text(name, known)));
  }
  std::shared_ptr<torch::nn::Module> target = builder->second();
  {
    torch::NoGradGuard no_grad;
    auto src = online->named_parameters(true);
    auto dst = target->named_parameters(true);
    for (auto& p : dst) {
      p.value().copy_(src[p.key()]);
      p.value().set_requires_grad(false);
    }
    auto src_b = online->named_buffers(true);
    for (auto& b : target->named_buffers(true)) b.value().copy_(src_b[b.key()]);
  }
  target->to(device_);
  ema_targets_[name] = EmaTarget{online, target, options.momentum, options};
  return target;
}

}  // namespace sslab
