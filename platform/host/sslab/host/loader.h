// The data loader: worker threads, bounded prefetch, per-epoch deterministic
// shuffling, drop-last, rank sharding and collation of variable-length samples.
//
// Determinism: the order of an epoch is a function of (seed, epoch) only, and
// the random transforms of a sample are seeded from (seed, epoch, index), so
// batches are the same whatever the number of workers or threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sslab/components.h"

namespace sslab {

struct LoaderOptions {
  int64_t batch_size = 32;  // per rank
  int workers = 2;          // 0: load in the calling thread
  int prefetch = 4;         // batches in flight
  bool shuffle = true;
  bool drop_last = true;
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  bool skip_bad_samples = false;  // DataError: skip (and count) instead of failing
  bool pin_memory = false;        // collate into page-locked memory (CUDA runs: async copies)
  // Length bucketing (fairseq's batch_by_size): with one length per dataset
  // sample here, every epoch sorts the samples by length rounded up to a
  // multiple of bucket_width (ties in a seeded random order), cuts the
  // sorted list into batches, and shuffles the order of the batches. With
  // max_tokens > 0 a batch takes samples while (samples x its longest
  // rounded length) stays within max_tokens, and at most batch_size of them;
  // otherwise batch_size each (the last batch may be smaller). Every sample
  // is in one batch per epoch; with several ranks the batches are dealt
  // round-robin and the last world_size - 1 at most are left out.
  // Determinism, seek and resume are as without bucketing.
  std::vector<int64_t> lengths;
  int64_t bucket_width = 1;
  int64_t max_tokens = 0;
  // Views: key -> n copies "<key>@0".."<key>@n-1" made before the transforms
  // (each view then has its own pipeline, so its own random augmentation).
  std::map<std::string, int> views;
};

// Transforms applied in order to one key of every sample.
struct Pipeline {
  std::string key;
  std::vector<std::shared_ptr<Transform>> transforms;
};

// collate() and mix_seed() are in sslab/components.h.

// The first dimension of `key` in every sample of `dataset` (read with get(),
// before transforms, on `threads` threads): LoaderOptions::lengths. UserError
// naming `where` when a sample lacks the key or it is a scalar.
SSLAB_API std::vector<int64_t> sample_lengths(const Dataset& dataset, const std::string& key, int threads,
                                              const std::string& where);

class SSLAB_API Loader {
 public:
  Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options, std::vector<Pipeline> pipelines = {});
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Batches per epoch for this rank.
  int64_t batches_per_epoch() const;
  // Positions the loader at batch `batch` of epoch `epoch` (for resume).
  void seek(int64_t epoch, int64_t batch);
  // The next batch; moves on to the next epoch at the end of one.
  Batch next();
  // The position of the batch next() will return.
  int64_t epoch() const { return epoch_; }
  int64_t batch_in_epoch() const { return batch_; }
  // Samples skipped because their file was bad (skip policy).
  int64_t skipped() const;

  // The sample indices of batch `b` of epoch `e` for this rank.
  std::vector<int64_t> indices(int64_t e, int64_t b) const;
  // Loads one batch synchronously (no prefetch).
  Batch load(int64_t e, int64_t b) const;

 private:
  struct Pool;
  struct Loaded {
    Batch batch;
    int64_t skipped = 0;
  };
  Batch load(int64_t e, int64_t b, int64_t& skipped) const;
  void fill();
  std::shared_ptr<const std::vector<int64_t>> order(int64_t e) const;
  // Bucketing: the epoch's batches (global, before dealing to ranks).
  std::shared_ptr<const std::vector<std::vector<int64_t>>> buckets(int64_t e) const;
  bool bucketing() const { return !options_.lengths.empty(); }
  int64_t global_batches_ = 0;  // bucketing: batches per epoch over all ranks

  std::shared_ptr<Dataset> dataset_;
  LoaderOptions options_;
  std::vector<Pipeline> pipelines_;
  int64_t epoch_ = 0, batch_ = 0;
  std::unique_ptr<Pool> pool_;
};


}  // namespace sslab
