// The trainer's schedules: the learning rate (linear warmup, then cosine to
// train.min_lr or constant) and the momentum of cosine-scheduled EMA targets.
#pragma once

#include <cstdint>

#include "sslab/components.h"
#include "sslab/recipe.h"

namespace sslab {

class LrSchedule {
 public:
  // From the validated [train] table (lr, min_lr, warmup_steps, schedule).
  LrSchedule(const Config& train, int64_t total_steps);
  // The lr of the step-th optimizer update (step is 1-based).
  double at(int64_t step) const;

 private:
  double lr_, min_lr_;
  int64_t warmup_, total_steps_;
  bool cosine_;
};

// Sets the momentum of every EMA target with schedule "cosine" for `step`:
// m = 1 - (1 - momentum) (cos(pi step / total_steps) + 1) / 2 (BYOL).
void schedule_ema_momentum(BuildContext& ctx, int64_t step, int64_t total_steps);

}  // namespace sslab
