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

std::shared_ptr<Dataset> BuildContext::dataset(const std::string& split, const std::string& where) const {
  return lookup(datasets, split, "dataset split", where);
}
std::shared_ptr<Encoder> BuildContext::encoder(const std::string& name, const std::string& where) const {
  return lookup(encoders, name, "encoder", where);
}
std::shared_ptr<Head> BuildContext::head(const std::string& name, const std::string& where) const {
  return lookup(heads, name, "head", where);
}


std::shared_ptr<torch::nn::Module> BuildContext::ema_target(const std::string& name, double momentum,
                                                            const std::string& where) {
  SSLAB_CHECK(momentum >= 0 && momentum <= 1, where.empty() ? "" : where + ": ", "EMA momentum must be in [0, 1], got ",
              momentum);
  auto it = ema_targets_.find(name);
  if (it != ema_targets_.end()) return it->second.target;
  std::shared_ptr<torch::nn::Module> online;
  if (encoders.count(name)) online = encoders.at(name);
  else if (heads.count(name)) online = heads.at(name);
  auto builder = builders.find(name);
  if (!online || builder == builders.end()) {
    std::vector<std::string> known;
    for (const auto& kv : builders) known.push_back(kv.first);
    throw UserError(str(where.empty() ? "" : where + ": ", "no encoder or head named '", name,
                        "' for an EMA target; ", suggestion_text(name, known)));
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
  target->to(device);
  ema_targets_[name] = EmaTarget{online, target, momentum, "constant", momentum};
  return target;
}

}  // namespace sslab
