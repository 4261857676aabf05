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
  bool random_encoder = true;
  bool raw_baseline = true;  // mean frame pixels
  ProbeOptions probe;
  int64_t train_limit = 0, test_limit = 0, batch_size = 64;
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

// Trains the multi-label probe; returns test scores [N, K].
torch::Tensor multilabel_probe_scores(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const ProbeOptions& options);
// Mean over classes (present in the test set) of average precision.
double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets);
// Share of true labels among each sample's top-m scores (m = its label count).
double recall_at_m(const torch::Tensor& scores, const torch::Tensor& targets);

}  // namespace sslab::video
