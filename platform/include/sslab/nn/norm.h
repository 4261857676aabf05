// Batch norm whose statistics cover the whole global batch of a
// data-parallel run (SimCLR/BYOL heads with small per-rank batches). Its
// parameters and buffers have BatchNorm1d's names, so checkpoints move
// between world sizes; with no communicator (or one rank) it is BatchNorm1d.
#pragma once

#include <memory>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {
class Communicator;
}

namespace sslab::nn {

class SSLAB_API SyncBatchNorm1dImpl : public torch::nn::Cloneable<SyncBatchNorm1dImpl> {
 public:
  SyncBatchNorm1dImpl(int64_t features, std::shared_ptr<Communicator> comm, bool affine = true, double eps = 1e-5,
                      double momentum = 0.1);
  void reset() override;
  // x [B, features]
  torch::Tensor forward(const torch::Tensor& x);

  int64_t features;
  std::shared_ptr<Communicator> comm;
  bool affine;
  double eps, momentum;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(SyncBatchNorm1d);

}  // namespace sslab::nn
