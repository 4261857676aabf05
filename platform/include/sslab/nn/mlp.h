// A multi-layer perceptron for projector, predictor and classifier heads:
// Linear -> [norm] -> activation -> ... -> Linear (no norm or activation after
// the last layer unless last_norm). SimCLR's projector is
//   Mlp(MlpOptions({512, 2048, 128}).norm("batch"))
// and BYOL's predictor Mlp(MlpOptions({256, 4096, 256}).norm("batch")).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {
class Communicator;
}

namespace sslab::nn {

struct MlpOptions {
  /* implicit */ MlpOptions(std::vector<int64_t> dims) : dims_(std::move(dims)) {}
  TORCH_ARG(std::vector<int64_t>, dims);        // in, hidden..., out (at least 2)
  TORCH_ARG(std::string, activation) = "relu";  // relu, gelu or none
  TORCH_ARG(std::string, norm) = "none";        // none, batch or layer (after hidden linears)
  TORCH_ARG(bool, last_norm) = false;           // also normalise the output (BatchNorm, affine=false)
  TORCH_ARG(bool, bias) = true;                 // biases of the linears
  // Batch norms use global-batch statistics over this process group
  // (SyncBatchNorm1d); null or one rank: plain BatchNorm1d.
  TORCH_ARG(std::shared_ptr<Communicator>, sync) = nullptr;
};

// Children: layers (a Sequential: "layers.0.weight", "layers.1.running_mean", ...).
class SSLAB_API MlpImpl : public torch::nn::Cloneable<MlpImpl> {
 public:
  explicit MlpImpl(const MlpOptions& options);
  void reset() override;
  // x [B, dims.front()] (or [..., dims.front()] without batch norm) -> [..., dims.back()]
  torch::Tensor forward(const torch::Tensor& x);

  MlpOptions options;
  torch::nn::Sequential layers{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace sslab::nn
