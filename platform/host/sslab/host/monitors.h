// Live collapse monitors: on the training batch of every logged step, each
// encoder's embeddings (in eval mode, without gradients, so training is not
// touched) are measured and logged as monitor/<encoder>/<name>:
//   std      mean over dimensions of the per-dimension standard deviation of
//            the L2-normalised embeddings (about 1/sqrt(dim) when spread
//            out, 0 when every sample maps to one point)
//   std_ratio  std x sqrt(dim): 1 for isotropic embeddings, 0 collapsed
//   erank    effective rank (Roy & Vetterli 2007): exp of the entropy of the
//            normalised singular values of the centred, normalised
//            embeddings; 1 when they lie on a line
//   align, uniform  (encoders with two views) Wang & Isola 2020: mean
//            squared distance between a sample's two views, and
//            log E exp(-2 |z_i - z_j|^2) over pairs of samples
// A warning line, once per encoder, says when an encoder has collapsed.
#pragma once

#include <cmath>
#include <map>
#include <ostream>
#include <set>
#include <string>

#include <torch/torch.h>

#include "sslab/components.h"
#include "sslab/export.h"

namespace sslab {

struct EmbeddingStats {
  double std = NAN, std_ratio = NAN, erank = NAN, align = NAN, uniform = NAN;
};

// The statistics of embeddings z [B, D] (and, when defined, of the other
// view z2 [B, D] of the same samples).
SSLAB_API EmbeddingStats embedding_stats(const torch::Tensor& z, const torch::Tensor& z2 = {});

// Collapsed: std_ratio below 0.02, or an effective rank below 1.2 (of a
// batch of at least 8 samples).
SSLAB_API bool looks_collapsed(const EmbeddingStats& s);

class SSLAB_API Monitors {
 public:
  // views: input key -> views the loader makes ([views]).
  Monitors(BuildContext& ctx, std::map<std::string, int> views, std::ostream& warnings);
  // Adds monitor/<encoder>/<stat> to metrics for every encoder, and warns
  // (once per encoder) on collapse.
  void observe(const Batch& batch, int64_t step, std::map<std::string, double>& metrics);

 private:
  BuildContext& ctx_;
  std::map<std::string, int> views_;
  std::ostream& warnings_;
  std::set<std::string> warned_;
};

}  // namespace sslab
