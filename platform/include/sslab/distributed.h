// The collectives a loss or a layer needs in a data-parallel run: the
// process group the host hands to components (BuildContext::comm()) and
// differentiable gathers and sums over ranks. Connecting to the job and
// gradient averaging are the host's (sslab/host/distributed.h); the c10d
// headers stay in distributed.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {

// A finished-or-pending collective. wait() rethrows a failure as a UserError
// naming the operation (a peer that died, a timeout).
class SSLAB_API CollectiveWork {
 public:
  struct Impl;
  explicit CollectiveWork(std::unique_ptr<Impl> impl);
  ~CollectiveWork();
  void wait();

 private:
  std::unique_ptr<Impl> impl_;
};

// One process group. All ranks must issue the same collectives in the same
// order with tensors of the same shapes.
class SSLAB_API Communicator {
 public:
  struct Impl;
  explicit Communicator(std::unique_ptr<Impl> impl);
  ~Communicator();

  int rank() const;
  int world_size() const;
  const std::string& backend() const;

  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  // In-place sums across ranks.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  std::unique_ptr<CollectiveWork> all_reduce_sum_async(torch::Tensor& tensor);
  // Tensors of every rank, in rank order (same shape everywhere).
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor);
  void barrier();

 private:
  std::unique_ptr<Impl> impl_;
};

// Concatenation along dim 0 of `x` from every rank (rank order). Backward
// sums the incoming gradients over ranks and returns this rank's slice, so a
// loss over the gathered batch gets the same gradient as one process holding
// the whole batch (SimCLR's cross-replica negatives). comm == nullptr: x.
SSLAB_API torch::Tensor all_gather_with_grad(Communicator* comm, const torch::Tensor& x);

// Sum of `x` over ranks, differentiable the same way (synchronised batch-norm
// statistics). comm == nullptr: x.
SSLAB_API torch::Tensor all_reduce_sum_with_grad(Communicator* comm, const torch::Tensor& x);

}  // namespace sslab
