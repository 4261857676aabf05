#include "sslab/host/schedules.h"

#include <algorithm>
#include <cmath>

#include "sslab/host/experiment.h"

namespace sslab {

LrSchedule::LrSchedule(const Config& train, int64_t total_steps)
    : lr_(train.get_float("lr")),
      min_lr_(train.get_float("min_lr")),
      warmup_(train.get_int("warmup_steps")),
      total_steps_(total_steps),
      cosine_(train.get_string("schedule") != "constant") {}

double LrSchedule::at(int64_t step) const {
  if (warmup_ > 0 && step <= warmup_) return lr_ * static_cast<double>(step) / warmup_;
  if (!cosine_) return lr_;
  double progress = static_cast<double>(step - warmup_) / std::max<int64_t>(1, total_steps_ - warmup_);
  progress = std::clamp(progress, 0.0, 1.0);
  return min_lr_ + 0.5 * (lr_ - min_lr_) * (1.0 + std::cos(M_PI * progress));
}

void schedule_ema_momentum(BuildContext& ctx, int64_t step, int64_t total_steps) {
  for (auto& [name, t] : HostAccess::ema_targets(ctx)) {
    if (t.options.schedule == "cosine")
      t.momentum = 1 - (1 - t.options.momentum) * (std::cos(M_PI * static_cast<double>(step) / total_steps) + 1) / 2;
  }
}

}  // namespace sslab
