// The joint-embedding trainer: one loop for every recipe.
//
// step = loader.next -> objectives (weighted sum) -> backward (accumulated,
//        all-reduced) -> online probe -> clip -> optimizer -> schedule -> EMA
//        targets
// (the online probe trains on each micro-batch, before the optimizer step).
// Every log.every_steps: metrics.jsonl, TensorBoard, progress. Every
// checkpoint.every_steps and at the end: an atomic checkpoint. At the end:
// evaluation when [eval] enabled.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/run_folder.h"

namespace sslab {

struct TrainOptions {
  std::string out;         // run folder ("" -> runs/<name>-<timestamp>)
  std::string resume;      // run folder to resume ("" -> fresh run)
  bool evaluate = true;    // run evaluation at the end when [eval] is enabled
  int64_t threads = 0;     // intra-op threads (0: train.threads); not part of the recipe
};

struct TrainResult {
  std::string run_dir;
  int64_t steps = 0;
  double final_loss = 0;
  int stopped_by = 0;  // the signal that stopped the run after `steps` (checkpoint written), 0 if it finished
};

// Trains a recipe (or resumes a run). Throws UserError for bad input and
// for a NaN/infinite loss (naming the step and the objective).
SSLAB_API TrainResult train(const Recipe& recipe, const TrainOptions& options);
SSLAB_API TrainResult resume(const std::string& run_dir, const TrainOptions& options);

// load_run_recipe: sslab/host/run_folder.h; latest_checkpoint, load_weights:
// sslab/host/checkpoint.h.

// One EMA step for every target of the context:
// target = m * target + (1 - m) * online; buffers are copied.
SSLAB_API void update_ema_targets(BuildContext& ctx);

// The run folder of a run: `resume_dir` when resuming, else options.out
// (UserError if it already holds checkpoints), else runs/<name>-<timestamp>.
SSLAB_API std::string choose_run_dir(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir);

// The objectives' forward passes on `batch`: their weighted sum times
// `scale` (1 / micro-batches per step) to backpropagate. Adds each
// objective's loss and metrics (times scale) to `metrics` and the weighted
// total to `total`. A NaN or infinite loss is a UserError starting with
// `where` ("step 12") and naming the objective.
SSLAB_API torch::Tensor objectives_loss(Experiment& exp, const Batch& batch, double scale,
                                        std::map<std::string, double>& metrics, double& total, const std::string& where);

// Sets intra-op threads (0: one per core) and returns the number used.
SSLAB_API int set_threads(int64_t threads);

}  // namespace sslab
