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

// Sets intra-op threads (0: one per core) and returns the number used.
SSLAB_API int set_threads(int64_t threads);

}  // namespace sslab
