// The online linear probes: one linear head per encoder, trained on detached
// embeddings of the training batches (train.probe), reported as probe_acc
// (probe_acc/<encoder> with several encoders). In data-parallel runs their
// gradients are averaged over ranks so the heads stay identical everywhere.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sslab/components.h"

namespace sslab {

class CheckpointReader;
class CheckpointWriter;
class Communicator;

class OnlineProbes {
 public:
  // No probes when num_classes is 0 (an unlabelled dataset).
  OnlineProbes(BuildContext& ctx, int64_t num_classes, double lr, int64_t every, std::shared_ptr<Communicator> comm);
  bool empty() const { return probes_.empty(); }

  // One probe update on a labelled micro-batch, every `every` steps (step is
  // 1-based); adds the accuracy divided by `accumulate` to metrics.
  void train_step(const Batch& batch, int64_t step, int64_t accumulate, std::map<std::string, double>& metrics);

  // The heads' parameters and buffers (broadcast from rank 0).
  std::vector<torch::Tensor> state_tensors();
  void save(CheckpointWriter& out);
  void load(CheckpointReader& in);

 private:
  struct Probe {
    std::string encoder;
    torch::nn::Linear head{nullptr};
    std::unique_ptr<torch::optim::AdamW> optimizer;
  };
  BuildContext& ctx_;
  std::shared_ptr<Communicator> comm_;
  int64_t every_;
  std::vector<Probe> probes_;
};

}  // namespace sslab
