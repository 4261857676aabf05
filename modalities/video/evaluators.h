// Video evaluation: next-frame MSE on the test split beside the
// copy-last-frame baseline, and a multi-label linear probe of the clip
// embedding on the items' classes beside a random-encoder baseline.
#pragma once

#include <string>

#include <sslab/components.h>
#include <sslab/evaluation.h>

namespace sslab::video {

struct NextFrameOptions {
  std::string encoder = "video", decoder = "decoder";
  int64_t context_frames = 10, predict_frames = 10;
  int64_t test_limit = 0, batch_size = 32;
};

// "next_frames/model" and "next_frames/copy_last_frame": mse_per_frame
// (squared error summed over each frame, averaged over predicted frames and
// clips) and mse_step_<j> for each predicted step; "next_frames/model" also
// holds clips. The model rolls out on its own predictions.
class NextFrameEval : public Evaluator {
 public:
  explicit NextFrameEval(NextFrameOptions options) : options_(std::move(options)) {}
  EvalResults evaluate(BuildContext& ctx) override;

 private:
  NextFrameOptions options_;
};

struct ItemProbeOptions {
  std::string encoder;  // "" : the only one
  std::string labels = "label.items";
  bool raw_baseline = true;  // mean frame pixels
  ProbeSettings settings;    // limits, batch size, probe options, random-encoder baseline
};

// Multi-label probe: logistic regression per class (one linear layer, BCE)
// on standardised embeddings. Results "items/<name>" for linear_probe,
// baseline_random_encoder and baseline_raw_mean_frame: map (mean average
// precision over classes) and recall_at_m (share of each clip's m distinct
// item classes found among its m highest scores; chance ~ m / classes).
class ItemProbe : public Evaluator {
 public:
  explicit ItemProbe(ItemProbeOptions options) : options_(std::move(options)) {}
  EvalResults evaluate(BuildContext& ctx) override;

 private:
  ItemProbeOptions options_;
};

// The multi-label probe and its metrics are the SDK's (sslab/evaluation.h).

}  // namespace sslab::video
