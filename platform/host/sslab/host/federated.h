// Federated self-supervised training: a recipe's [federated] section turns
// the trainer into FedAvg over simulated clients, each holding a private
// shard of the training split that only it reads.
//
//   round r = 1..rounds:
//     clients_per_round of `clients` drawn from (seed, r)
//     each: start from the global model (its `local` tensors from its own
//           copy), train local_steps optimizer steps on its shard
//     global = sum_k n_k theta_k / sum_k n_k   (n_k: the client's samples)
//     online probe on the global model, metrics line with "round", checkpoint
//
// One process simulates every client in turn; under torchrun each rank
// trains the sampled clients at positions rank, rank + world, ... of the
// round's list and the sums are all-reduced, so the global weights are the
// same either way (clients are seeded by their number, not by their rank).
// docs/federated.md has the recipe keys, the baselines and the results.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sslab/components.h"
#include "sslab/host/trainer.h"
#include "sslab/recipe.h"

namespace sslab {

SSLAB_API Schema federated_schema();

// Whether a recipe trains federated: it has [federated] with enabled = true
// and only_client = -1 (only_client >= 0 trains that client's shard alone,
// centrally: the single-client baseline).
SSLAB_API bool is_federated(const Recipe& recipe);

// Partitions of samples 0..n-1 over clients: one sorted index list per
// client, every sample in exactly one list; reproducible from the seed.
// iid: a seeded shuffle cut into `clients` nearly equal shards.
SSLAB_API std::vector<std::vector<int64_t>> partition_iid(int64_t n, int64_t clients, uint64_t seed);
// dirichlet: per class, the shares of the clients drawn from
// Dirichlet(alpha, ..., alpha) (small alpha: each client sees few classes).
// Drawn again (up to 1000 times, same seeded stream) until every client has
// at least min_size samples; UserError naming `where` otherwise.
SSLAB_API std::vector<std::vector<int64_t>> partition_dirichlet(const std::vector<int64_t>& labels, int64_t clients,
                                                                double alpha, int64_t min_size, uint64_t seed,
                                                                const std::string& where);
// by_key: all samples with the same key value (a speaker, a file) on one
// client; the distinct values are shuffled and dealt round-robin.
SSLAB_API std::vector<std::vector<int64_t>> partition_by_key(const std::vector<int64_t>& keys, int64_t clients,
                                                             uint64_t seed, const std::string& where);

// The partition a validated [federated] table asks for over `dataset`
// (dirichlet and by_key read `key` of every sample, and return them in
// `values` when given). Every client must hold at least `min_size` samples
// (a batch); UserError naming the key otherwise.
SSLAB_API std::vector<std::vector<int64_t>> federated_partition(const Config& fed, const Dataset& dataset,
                                                                uint64_t seed, int64_t min_size,
                                                                std::vector<int64_t>* values = nullptr);

// The clients of round `round` (1-based), sorted: all when per_round is 0
// or >= clients, else per_round drawn without replacement from (seed, round).
SSLAB_API std::vector<int64_t> round_clients(int64_t clients, int64_t per_round, uint64_t seed, int64_t round);

// subset_dataset (a client's shard): sslab/host/experiment.h.

// Federated training (called by train() and resume() for federated recipes).
TrainResult train_federated(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir);

}  // namespace sslab
