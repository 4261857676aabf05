#include "sslab/host/optimizer.h"

namespace sslab {

namespace {

template <typename Optimizer, typename Options>
std::unique_ptr<torch::optim::Optimizer> with_groups(const std::vector<torch::Tensor>& params, Options options,
                                                     double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<Options>(Options(options).weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<Options>(Options(options).weight_decay(0.0)));
  return std::make_unique<Optimizer>(groups, Options(options).weight_decay(weight_decay));
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Config& train, const std::vector<torch::Tensor>& params) {
  double lr = train.get_float("lr"), wd = train.get_float("weight_decay");
  if (train.get_string("optimizer") == "adamw") {
    auto betas = train.get_floats("betas");
    return with_groups<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).betas({betas[0], betas[1]}), wd);
  }
  return with_groups<torch::optim::SGD>(params, torch::optim::SGDOptions(lr).momentum(train.get_float("momentum")), wd);
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& g : optimizer.param_groups()) g.options().set_lr(lr);
}

}  // namespace sslab
