#include "probes.h"

namespace sslab::audio {
namespace {

std::string short_name(const std::string& key) { return key.rfind("label.", 0) == 0 ? key.substr(6) : key; }

}  // namespace

torch::Tensor pooled_logmel(const LogMel& logmel, const torch::Tensor& wave, const torch::Tensor& lengths) {
  torch::Tensor feats = logmel.features(wave);  // [B,T,M]
  const int64_t t = feats.size(1);
  torch::Tensor frames = lengths.defined() ? (1 + lengths.to(torch::kInt64) / logmel.options().hop).clamp_max(t)
                                           : torch::full({wave.size(0)}, t, torch::kInt64);
  torch::Tensor m = (torch::arange(t).unsqueeze(0) < frames.unsqueeze(1)).to(torch::kFloat32).unsqueeze(-1);
  torch::Tensor count = m.sum(1).clamp_min(1.0);
  torch::Tensor mean = (feats * m).sum(1) / count;
  torch::Tensor var = ((feats - mean.unsqueeze(1)).pow(2) * m).sum(1) / count;
  return torch::cat({mean, torch::sqrt(var + 1e-8)}, 1);
}

EvalResults LabelProbes::evaluate(BuildContext& ctx) {
  const char* who = "audio.label_probes";
  ProbeTarget target(ctx, options_.encoder, options_.settings, who);
  std::vector<FeatureSpec> specs = target.features();
  if (options_.logmel_baseline) {
    specs.push_back({"logmel",
                     [&, key = target.input()](const Batch& b) {
                       torch::Tensor len = b.has(key + ".length") ? b.at(key + ".length") : torch::Tensor();
                       SSLAB_CHECK(b.at(key).dim() == 2, who, ": the log-mel baseline needs a wave input [B,S], got '",
                                   key, "' ", b.at(key).sizes());
                       return pooled_logmel(logmel_, b.at(key), len);
                     },
                     false});
  }
  const ProbeSettings& ps = options_.settings;
  const SplitFeatures f = embed_splits(ctx, ps, specs, options_.labels, who);
  const Features &tr = f.train, &te = f.test;

  ProbeOptions po = ps.probe;
  po.seed = ctx.seed();
  EvalResults results;
  for (const auto& key : options_.labels) {
    const torch::Tensor &ytr = tr.label(key), &yte = te.label(key);
    const int64_t classes = std::max(ytr.max().item<int64_t>(), yte.max().item<int64_t>()) + 1;
    const std::string p = short_name(key) + "/";
    auto probe = [&](const std::string& part) {
      return linear_probe_accuracy(tr.at(part), ytr, te.at(part), yte, classes, po);
    };
    auto knn = [&](const std::string& part) {
      return knn_accuracy(tr.at(part), ytr, te.at(part), yte, classes, ps.knn_k);
    };
    results[p + "linear_probe"]["accuracy"] = probe("encoder");
    results[p + "linear_probe"]["classes"] = static_cast<double>(classes);
    results[p + "linear_probe"]["test_samples"] = static_cast<double>(yte.size(0));
    results[p + "majority_class"]["accuracy"] = majority_accuracy(ytr, yte, classes);  // the floor
    if (ps.knn) results[p + "knn"]["accuracy"] = knn("encoder");
    if (options_.logmel_baseline) {
      results[p + "baseline_logmel_linear"]["accuracy"] = probe("logmel");
      if (ps.knn) results[p + "baseline_logmel_knn"]["accuracy"] = knn("logmel");
    }
    if (target.has_random()) results[p + "baseline_random_encoder"]["accuracy"] = probe("random");
  }
  return results;
}

}  // namespace sslab::audio
