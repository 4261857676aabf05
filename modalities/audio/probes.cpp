#include "probes.h"

#include <sslab/loader.h>

namespace sslab::audio {
namespace {

struct Features {
  std::map<std::string, std::vector<torch::Tensor>> parts;  // name -> per-batch [b, D]
  std::map<std::string, std::vector<torch::Tensor>> labels;

  torch::Tensor get(const std::string& name) const { return torch::cat(parts.at(name)); }
  torch::Tensor label(const std::string& key) const { return torch::cat(labels.at(key)); }
};

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
  std::string name = options_.encoder;
  if (name.empty()) {
    SSLAB_CHECK(ctx.encoders.size() == 1, "audio.label_probes: the recipe has ", ctx.encoders.size(),
                " encoders; set encoder = \"<name>\"");
    name = ctx.encoders.begin()->first;
  }
  auto enc = ctx.encoder(name, "audio.label_probes");
  std::shared_ptr<Encoder> random;
  if (options_.random_encoder) {
    auto it = ctx.builders.find("encoders." + name);
    SSLAB_ASSERT(it != ctx.builders.end(), "no builder for encoder ", name);
    torch::manual_seed(ctx.seed + 7919);
    random = std::dynamic_pointer_cast<Encoder>(it->second());
    random->eval();
  }
  enc->eval();
  auto run = [&](Dataset& data, int64_t limit) {
    torch::NoGradGuard no_grad;
    Features f;
    const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
    for (int64_t start = 0; start < n; start += options_.batch_size) {
      std::vector<Sample> samples;
      for (int64_t i = start; i < std::min(n, start + options_.batch_size); ++i) samples.push_back(data.get(i));
      Batch b = collate(samples);
      for (const auto& key : options_.labels) {
        SSLAB_CHECK(b.has(key), "audio.label_probes: the samples have no key '", key, "'");
        f.labels[key].push_back(b.at(key));
      }
      Batch dev = ctx.device.is_cpu() ? b : b.to(ctx.device);
      f.parts["encoder"].push_back(enc->embed(dev).to(torch::kCPU, torch::kFloat32));
      if (random) f.parts["random"].push_back(random->embed(dev).to(torch::kCPU, torch::kFloat32));
      if (options_.logmel_baseline) {
        const std::string& key = enc->input();
        torch::Tensor len = b.has(key + ".length") ? b.at(key + ".length") : torch::Tensor();
        SSLAB_CHECK(b.at(key).dim() == 2, "audio.label_probes: the log-mel baseline needs a wave input [B,S], got '",
                    key, "' ", b.at(key).sizes());
        f.parts["logmel"].push_back(pooled_logmel(logmel_, b.at(key), len));
      }
    }
    return f;
  };
  Features tr = run(*ctx.dataset("train", "audio.label_probes"), options_.train_limit);
  Features te = run(*ctx.dataset("test", "audio.label_probes"), options_.test_limit);
  enc->train();

  EvalResults results;
  for (const auto& key : options_.labels) {
    torch::Tensor ytr = tr.label(key), yte = te.label(key);
    const int64_t classes = std::max(ytr.max().item<int64_t>(), yte.max().item<int64_t>()) + 1;
    const std::string p = short_name(key) + "/";
    auto probe = [&](const std::string& part) {
      return linear_probe_accuracy(tr.get(part), ytr, te.get(part), yte, classes, options_.probe);
    };
    results[p + "linear_probe"]["accuracy"] = probe("encoder");
    results[p + "linear_probe"]["classes"] = static_cast<double>(classes);
    results[p + "linear_probe"]["test_samples"] = static_cast<double>(yte.size(0));
    // Majority class of the training labels, scored on test: the floor.
    torch::Tensor counts = torch::bincount(ytr, {}, classes);
    results[p + "majority_class"]["accuracy"] = (yte == counts.argmax()).to(torch::kFloat64).mean().item<double>();
    if (options_.knn)
      results[p + "knn"]["accuracy"] =
          knn_accuracy(tr.get("encoder"), ytr, te.get("encoder"), yte, classes, options_.knn_k);
    if (options_.logmel_baseline) {
      results[p + "baseline_logmel_linear"]["accuracy"] = probe("logmel");
      if (options_.knn)
        results[p + "baseline_logmel_knn"]["accuracy"] =
            knn_accuracy(tr.get("logmel"), ytr, te.get("logmel"), yte, classes, options_.knn_k);
    }
    if (random) results[p + "baseline_random_encoder"]["accuracy"] = probe("random");
  }
  return results;
}

}  // namespace sslab::audio
