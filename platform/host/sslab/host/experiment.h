// An Experiment: a recipe with its plugins loaded and its components built
// (datasets, transforms, tokenizers, encoders, heads, objectives, evaluators).
// Shared by `sslab train` and `sslab eval`.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "sslab/components.h"
#include "sslab/host/loader.h"
#include "sslab/host/plugin_host.h"
#include "sslab/recipe.h"

namespace sslab {

// The host's write access to a BuildContext (plugins get the read-only side).
struct HostAccess {
  static void set_device(BuildContext& c, torch::Device d) { c.device_ = d; }
  static void set_seed(BuildContext& c, uint64_t seed) { c.seed_ = seed; }
  static void set_comm(BuildContext& c, std::shared_ptr<Communicator> comm, int rank, int world_size) {
    c.comm_ = std::move(comm);
    c.rank_ = rank;
    c.world_size_ = world_size;
  }
  static std::map<std::string, std::shared_ptr<Dataset>>& datasets(BuildContext& c) { return c.datasets_; }
  static std::map<std::string, std::shared_ptr<Encoder>>& encoders(BuildContext& c) { return c.encoders_; }
  static std::map<std::string, std::shared_ptr<Head>>& heads(BuildContext& c) { return c.heads_; }
  static std::map<std::string, std::shared_ptr<Tokenizer>>& tokenizers(BuildContext& c) { return c.tokenizers_; }
  static std::map<std::string, std::function<std::shared_ptr<torch::nn::Module>()>>& builders(BuildContext& c) {
    return c.builders_;
  }
  static std::map<std::string, BuildContext::EmaTarget>& ema_targets(BuildContext& c) { return c.ema_targets_; }
};

// The samples skipped as unreadable under data.<split>.on_error = "skip",
// each (split, index) once, in the order found. Thread-safe.
class SSLAB_API SkipLog {
 public:
  struct Entry {
    std::string split;
    int64_t index = 0;
    std::string path;  // the file named by the DataError
    std::string what;  // its message
  };
  void record(const std::string& split, int64_t index, const DataError& error);
  bool known_bad(const std::string& split, int64_t index) const;
  std::vector<Entry> entries() const;
  int64_t count() const;
  // One paragraph for stderr: how many, per split, and the first few files;
  // "" when nothing was skipped.
  std::string summary(const std::string& listed_in) const;
  // Writes every entry as TSV (split, index, path, error); false when there are none.
  bool write_tsv(const std::string& file) const;

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> any_{false};  // known_bad without the lock while nothing was skipped
  std::vector<Entry> entries_;
  std::set<std::pair<std::string, int64_t>> seen_;
};

// A split read under on_error = "skip": a sample whose file is unreadable is
// recorded in the log and replaced by the next readable sample of the split
// (index + 1, + 2, ..., wrapping), so every path that reads the split
// (training, probes, fine-tuning, sslab eval, plugins' evaluators) gets a
// sample and batches keep their size. More than `max_consecutive` unreadable
// samples in a row is a DataError: the data, not a file, is broken.
SSLAB_API std::shared_ptr<Dataset> skip_unreadable(std::shared_ptr<Dataset> inner, std::string split,
                                                  std::shared_ptr<SkipLog> log, int64_t max_consecutive = 1000);

struct ObjectiveSlot {
  std::string name;  // for logs: the `name` key, else the type (made unique)
  double weight = 1.0;
  std::shared_ptr<Objective> objective;
};

struct ExperimentOptions {
  // Read the encoders' and heads' `init` weights. Off when a checkpoint's
  // weights replace them anyway (resume, sslab eval): the files need not
  // exist any more.
  bool initialize = true;
  std::ostream* log = nullptr;  // where each init says what it loaded (default: stderr)
};

class SSLAB_API Experiment {
 public:
  // Loads plugins, validates, seeds torch with train.seed and builds every
  // component on train.device. With a communicator (data-parallel run) the
  // context carries its rank and world size, CUDA ranks use device
  // cuda:<local_rank>, and after building, torch's generator is reseeded per
  // rank so objectives draw different masks/negatives on each rank.
  // Encoders and heads with `init` start from those weights (after they are
  // built, before the objectives, so an EMA target copies them).
  Experiment(Recipe recipe, PluginHost& host, std::shared_ptr<Communicator> comm = nullptr, int local_rank = 0,
             ExperimentOptions options = {});

  const Recipe& recipe() const { return recipe_; }
  BuildContext& context() { return *ctx_; }
  std::vector<ObjectiveSlot>& objectives() { return objectives_; }
  // The recipe's evaluators in order, each with its name for eval.json
  // conflicts: the built-in probes of [eval] first, then [[evaluators]].
  std::vector<std::pair<std::string, std::shared_ptr<Evaluator>>>& evaluators() { return evaluators_; }
  // Transform pipelines for the training split ("<key>@*" expanded to each view).
  const std::vector<Pipeline>& pipelines() const { return pipelines_; }
  // [views]: input key -> number of views the loader makes.
  const std::map<std::string, int>& views() const { return views_; }
  // Whether the split skips bad samples (data.<split>.on_error = "skip").
  bool skips_bad_samples(const std::string& split) const;
  // What the skipping splits have skipped so far (training and evaluation).
  const SkipLog& skip_log() const { return *skip_log_; }

  // Every trainable module by name: "encoders.<n>", "heads.<n>", "objectives.<i>".
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> modules() const;
  // Trainable parameters without duplicates (a module shared by two owners counts once).
  std::vector<torch::Tensor> parameters() const;


 private:
  Recipe recipe_;
  std::unique_ptr<BuildContext> ctx_;
  std::vector<Pipeline> pipelines_;
  std::map<std::string, int> views_;
  std::vector<ObjectiveSlot> objectives_;
  std::vector<std::pair<std::string, std::shared_ptr<Evaluator>>> evaluators_;
  std::map<std::string, bool> skip_;
  std::shared_ptr<SkipLog> skip_log_ = std::make_shared<SkipLog>();
};

// A dataset restricted to its first `limit` samples.
SSLAB_API std::shared_ptr<Dataset> limit_dataset(std::shared_ptr<Dataset> inner, int64_t limit);
// The samples `indices` of `inner`, in that order, renumbered 0..n-1
// (label subsets, federated clients' shards).
SSLAB_API std::shared_ptr<Dataset> subset_dataset(std::shared_ptr<Dataset> inner, std::vector<int64_t> indices);

}  // namespace sslab
