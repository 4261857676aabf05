// The host's side of data-parallel training on PyTorch's own c10d: where
// this process sits in the job (from the standard launcher environment), the
// process group, and bucketed gradient averaging overlapped with backward.
//
// Launch: torchrun --nproc-per-node=N --no-python sslab train RECIPE
// (or set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT yourself;
// under SLURM, SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID stand in for the
// first three).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sslab/distributed.h"

namespace sslab {

// Where this process sits in the job, read from the environment.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  // torchrun's agent hosts the TCPStore (TORCHELASTIC_USE_AGENT_STORE=True):
  // every rank joins it as a client. Otherwise rank 0 hosts it.
  bool agent_store = false;
  std::string source = "none";  // "none", "env" or "slurm"
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (SLURM's
// variables when RANK is absent). No variable: one process. A partial or
// malformed environment is a UserError naming what is missing. The second
// form reads `vars` instead of the process environment (tests).
SSLAB_API DistEnv read_dist_env();
SSLAB_API DistEnv read_dist_env(const std::map<std::string, std::string>& vars);

// Creates the process group of `env` (a world of one works too): a TCPStore at
// MASTER_ADDR:MASTER_PORT, then ProcessGroupGloo ("gloo") or
// ProcessGroupNCCL ("nccl", CUDA builds only). `backend` "auto" picks nccl
// for a CUDA device, gloo otherwise. Failing to reach the master within
// `timeout` is a UserError.
SSLAB_API std::shared_ptr<Communicator> connect(const DistEnv& env, const std::string& backend,
                                                std::chrono::milliseconds timeout, const torch::Device& device);

// Averages parameter gradients over ranks in buckets of ~bucket_bytes. With
// `overlap`, a bucket's all-reduce starts (in a fixed order on every rank)
// as soon as backward has produced all of its gradients, while backward goes
// on; finish() waits for every bucket and writes the averages back. Only the
// backward between arm() and finish() is reduced (the last micro-batch of an
// accumulated step). A parameter without a gradient on every rank keeps none.
class SSLAB_API GradientSync {
 public:
  struct Impl;
  GradientSync(std::shared_ptr<Communicator> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes,
               bool overlap);
  ~GradientSync();
  void arm();
  void finish();
  int64_t buckets() const;
  // Buckets of the last finish() whose all-reduce had started during backward.
  int64_t overlapped_buckets() const;

 private:
  std::shared_ptr<Impl> impl_;  // shared with the autograd hooks (weakly)
};

// Averages scalar metrics over ranks (every rank passes the same keys).
SSLAB_API std::map<std::string, double> average_metrics(Communicator& comm, const std::map<std::string, double>& m);

}  // namespace sslab
