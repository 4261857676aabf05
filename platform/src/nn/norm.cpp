#include "sslab/nn/norm.h"

#include "sslab/distributed.h"
#include "sslab/error.h"

namespace sslab::nn {

SyncBatchNorm1dImpl::SyncBatchNorm1dImpl(int64_t features_, std::shared_ptr<Communicator> comm_, bool affine_,
                                         double eps_, double momentum_)
    : features(features_), comm(std::move(comm_)), affine(affine_), eps(eps_), momentum(momentum_) {
  reset();
}

void SyncBatchNorm1dImpl::reset() {
  SSLAB_CHECK(features > 0, "sync batch norm: features must be > 0");
  if (affine) {
    weight = register_parameter("weight", torch::ones({features}));
    bias = register_parameter("bias", torch::zeros({features}));
  }
  running_mean = register_buffer("running_mean", torch::zeros({features}));
  running_var = register_buffer("running_var", torch::ones({features}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
}

torch::Tensor SyncBatchNorm1dImpl::forward(const torch::Tensor& x) {
  SSLAB_CHECK(x.dim() == 2 && x.size(1) == features, "sync batch norm: expected [B, ", features, "], got ", x.sizes());
  if (!is_training() || !comm || comm->world_size() == 1) {
    return torch::nn::functional::batch_norm(
        x, running_mean, running_var,
        torch::nn::functional::BatchNormFuncOptions().weight(weight).bias(bias).training(is_training())
            .momentum(momentum).eps(eps));
  }
  // Sums over the global batch, differentiable through every rank's rows.
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor count = torch::full({1}, static_cast<double>(x.size(0)), xf.options());
  torch::Tensor packed = torch::cat({xf.sum(0), (xf * xf).sum(0), count});
  torch::Tensor total = all_reduce_sum_with_grad(comm.get(), packed);
  torch::Tensor n = total.narrow(0, 2 * features, 1);
  torch::Tensor mean = total.narrow(0, 0, features) / n;
  torch::Tensor var = (total.narrow(0, features, features) / n - mean * mean).clamp_min(0);
  {
    torch::NoGradGuard no_grad;
    double nn = n.item<double>();
    running_mean.mul_(1 - momentum).add_(mean.detach(), momentum);
    running_var.mul_(1 - momentum).add_(var.detach() * (nn / std::max(nn - 1, 1.0)), momentum);
    num_batches_tracked.add_(1);
  }
  torch::Tensor y = (xf - mean) * torch::rsqrt(var + eps);
  if (affine) y = y * weight + bias;
  return y.to(x.scalar_type());
}

}  // namespace sslab::nn
