// Evaluation for audio: linear probe and kNN on every label key a dataset
// carries (speaker, word, ...), next to the log-mel + logistic-regression
// baseline and the random-encoder baseline, all on the same train/test split.
#pragma once

#include <string>
#include <vector>

#include <sslab/components.h>
#include <sslab/evaluation.h>

#include "transforms.h"

namespace sslab::audio {

struct LabelProbesOptions {
  std::string encoder;                       // "" : the only encoder
  std::vector<std::string> labels{"label"};  // batch keys to probe
  bool logmel_baseline = true;
  LogMelOptions logmel;
  ProbeSettings settings;  // limits, batch size, probe options, kNN, random-encoder baseline
};

// Utterance features from log-mel frames: mean and standard deviation over
// the real frames of each clip -> [B, 2 n_mels]. wave [B,S], lengths [B].
torch::Tensor pooled_logmel(const LogMel& logmel, const torch::Tensor& wave, const torch::Tensor& lengths);

// Results named "<label>/linear_probe", "<label>/knn",
// "<label>/baseline_logmel_linear", "<label>/baseline_logmel_knn",
// "<label>/baseline_random_encoder" with "accuracy" (and "classes").
class LabelProbes : public Evaluator {
 public:
  explicit LabelProbes(LabelProbesOptions options) : options_(std::move(options)), logmel_(options_.logmel) {}
  EvalResults evaluate(BuildContext& ctx) override;

 private:
  LabelProbesOptions options_;
  LogMel logmel_;
};

}  // namespace sslab::audio
