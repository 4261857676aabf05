// An Experiment: a recipe with its plugins loaded and its components built
// (datasets, transforms, tokenizers, encoders, heads, objectives, evaluators).
// Shared by `sslab train` and `sslab eval`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sslab/components.h"
#include "sslab/loader.h"
#include "sslab/plugin_host.h"
#include "sslab/recipe.h"

namespace sslab {

struct ObjectiveSlot {
  std::string name;  // for logs: the `name` key, else the type (made unique)
  double weight = 1.0;
  std::shared_ptr<Objective> objective;
};

class SSLAB_API Experiment {
 public:
  // Loads plugins, validates, seeds torch with train.seed and builds every
  // component on train.device. With a communicator (data-parallel run) the
  // context carries its rank and world size, CUDA ranks use device
  // cuda:<local_rank>, and after building, torch's generator is reseeded per
  // rank so objectives draw different masks/negatives on each rank.
  Experiment(Recipe recipe, PluginHost& host, std::shared_ptr<Communicator> comm = nullptr, int local_rank = 0);

  const Recipe& recipe() const { return recipe_; }
  BuildContext& context() { return *ctx_; }
  std::vector<ObjectiveSlot>& objectives() { return objectives_; }
  std::vector<std::shared_ptr<Evaluator>>& evaluators() { return evaluators_; }
  // Transform pipelines for the training split ("<key>@*" expanded to each view).
  const std::vector<Pipeline>& pipelines() const { return pipelines_; }
  // [views]: input key -> number of views the loader makes.
  const std::map<std::string, int>& views() const { return views_; }
  // Whether the split skips bad samples (data.<split>.on_error = "skip").
  bool skips_bad_samples(const std::string& split) const;

  // Every trainable module by name: "encoders.<n>", "heads.<n>", "objectives.<i>".
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> modules() const;
  // Trainable parameters without duplicates (a module shared by two owners counts once).
  std::vector<torch::Tensor> parameters() const;

  // Builds a fresh, randomly initialised copy of a named encoder (for the
  // random-encoder baseline), seeded with `seed`.
  std::shared_ptr<Encoder> fresh_encoder(const std::string& name, uint64_t seed);

 private:
  Recipe recipe_;
  std::unique_ptr<BuildContext> ctx_;
  std::vector<Pipeline> pipelines_;
  std::map<std::string, int> views_;
  std::vector<ObjectiveSlot> objectives_;
  std::vector<std::shared_ptr<Evaluator>> evaluators_;
  std::map<std::string, bool> skip_;
};

// A dataset restricted to its first `limit` samples.
SSLAB_API std::shared_ptr<Dataset> limit_dataset(std::shared_ptr<Dataset> inner, int64_t limit);

}  // namespace sslab
