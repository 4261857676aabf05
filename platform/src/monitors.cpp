#include "sslab/host/monitors.h"

#include <cstdio>

#include "sslab/evaluation.h"

namespace sslab {

EmbeddingStats embedding_stats(const torch::Tensor& z_in, const torch::Tensor& z2_in) {
  torch::NoGradGuard no_grad;
  EmbeddingStats s;
  if (!z_in.defined() || z_in.dim() != 2 || z_in.size(0) < 2 || z_in.size(1) < 1) return s;
  namespace F = torch::nn::functional;
  torch::Tensor z = F::normalize(z_in.detach().to(torch::kCPU, torch::kFloat64), F::NormalizeFuncOptions().dim(1));
  const double d = static_cast<double>(z.size(1));
  s.std = z.std(0).mean().item<double>();
  s.std_ratio = s.std * std::sqrt(d);
  if (!std::isfinite(s.std)) return s;
  if (s.std_ratio < 1e-3) {
    s.erank = 1.0;  // a point: what spread is left is rounding noise
  } else {
    torch::Tensor sv = torch::linalg_svdvals(z - z.mean(0, true));
    torch::Tensor p = sv / sv.sum().clamp_min(1e-30);
    p = p.masked_select(p > 0);
    s.erank = std::exp(-(p * p.log()).sum().item<double>());
  }
  if (z2_in.defined() && z2_in.sizes() == z_in.sizes()) {
    torch::Tensor z2 = F::normalize(z2_in.detach().to(torch::kCPU, torch::kFloat64), F::NormalizeFuncOptions().dim(1));
    s.align = (z - z2).pow(2).sum(1).mean().item<double>();
    torch::Tensor sq = torch::cdist(z, z).pow(2);
    const int64_t n = z.size(0);
    torch::Tensor off = torch::ones({n, n}, torch::kBool).triu(1);
    s.uniform = std::log(torch::exp(-2.0 * sq.masked_select(off)).mean().item<double>());
  }
  return s;
}

bool looks_collapsed(const EmbeddingStats& s) {
  return (std::isfinite(s.std_ratio) && s.std_ratio < 0.02) || (std::isfinite(s.erank) && s.erank < 1.2);
}

Monitors::Monitors(BuildContext& ctx, std::map<std::string, int> views, std::ostream& warnings)
    : ctx_(ctx), views_(std::move(views)), warnings_(warnings) {}

void Monitors::observe(const Batch& batch, int64_t step, std::map<std::string, double>& metrics) {
  for (const auto& name : ctx_.encoder_names()) {
    auto enc = ctx_.encoder(name);
    const std::string& key = enc->input();
    torch::Tensor z, z2;
    {
      EvalMode eval({enc.get()});
      torch::NoGradGuard no_grad;
      auto v = views_.find(key);
      const bool two = v != views_.end() && v->second >= 2 && batch.has(key + "@0") && batch.has(key + "@1");
      if (two) {
        z = enc->embed(select_view(batch, key, 0));
        z2 = enc->embed(select_view(batch, key, 1));
      } else if (batch.has(key)) {
        z = enc->embed(batch);
      } else {
        continue;  // this batch does not feed the encoder (e.g. another modality's)
      }
    }
    EmbeddingStats s = embedding_stats(z.flatten(1), z2.defined() ? z2.flatten(1) : z2);
    const std::string prefix = "monitor/" + name + "/";
    auto put = [&](const char* stat, double value) {
      if (std::isfinite(value)) metrics[prefix + stat] = value;
    };
    put("std", s.std);
    put("std_ratio", s.std_ratio);
    put("erank", s.erank);
    put("align", s.align);
    put("uniform", s.uniform);
    if (z.size(0) >= 8 && looks_collapsed(s) && warned_.insert(name).second) {
      char numbers[160];
      std::snprintf(numbers, sizeof(numbers), "std %.3g (x sqrt(dim) = %.3g; about 1 when spread out) and effective rank %.3g of %lld dimensions",
                    s.std, s.std_ratio, s.erank, static_cast<long long>(z.flatten(1).size(1)));
      const std::string line = "warning: encoder '" + name + "' looks collapsed at step " + std::to_string(step) +
                               ": its normalised embeddings have " + numbers +
                               "; the objective may lack what prevents collapse (negatives, a predictor with "
                               "stop-gradient, variance terms) or the learning rate may be too high";
      warnings_ << line << std::endl;
    }
  }
}

}  // namespace sslab
