#include "sslab/nn/mlp.h"

#include "sslab/distributed.h"
#include "sslab/error.h"
#include "sslab/nn/norm.h"

namespace sslab::nn {

MlpImpl::MlpImpl(const MlpOptions& options_) : options(options_) { reset(); }

void MlpImpl::reset() {
  const auto& dims = options.dims();
  SSLAB_CHECK(dims.size() >= 2, "mlp: dims needs at least an input and an output size");
  for (int64_t d : dims) SSLAB_CHECK(d > 0, "mlp: every size in dims must be > 0");
  const std::string& act = options.activation();
  const std::string& norm = options.norm();
  SSLAB_CHECK(act == "relu" || act == "gelu" || act == "none", "mlp: activation must be relu, gelu or none, got '", act,
              "'");
  SSLAB_CHECK(norm == "none" || norm == "batch" || norm == "layer", "mlp: norm must be none, batch or layer, got '",
              norm, "'");
  layers = torch::nn::Sequential();
  const bool sync = options.sync() && options.sync()->world_size() > 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) {
    const bool last = i + 2 == dims.size();
    // A bias before batch norm is redundant.
    const bool bias = options.bias() && (last || norm != "batch");
    layers->push_back(torch::nn::Linear(torch::nn::LinearOptions(dims[i], dims[i + 1]).bias(bias)));
    if (last) break;
    if (norm == "batch" && sync) layers->push_back(SyncBatchNorm1d(dims[i + 1], options.sync()));
    if (norm == "batch" && !sync) layers->push_back(torch::nn::BatchNorm1d(dims[i + 1]));
    if (norm == "layer") layers->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({dims[i + 1]})));
    if (act == "relu") layers->push_back(torch::nn::ReLU());
    if (act == "gelu") layers->push_back(torch::nn::GELU());
  }
  if (options.last_norm() && sync) layers->push_back(SyncBatchNorm1d(dims.back(), options.sync(), false));
  if (options.last_norm() && !sync)
    layers->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(dims.back()).affine(false)));
  register_module("layers", layers);
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return layers->forward(x); }

}  // namespace sslab::nn
