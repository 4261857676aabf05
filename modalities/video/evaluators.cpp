#include "evaluators.h"

#include <cmath>

#include <sslab/loader.h>

#include "model.h"

namespace sslab::video {
namespace {

std::vector<Batch> batches(Dataset& data, int64_t limit, int64_t batch_size) {
  std::vector<Batch> out;
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  for (int64_t s = 0; s < n; s += batch_size) {
    std::vector<Sample> samples;
    for (int64_t i = s; i < std::min(n, s + batch_size); ++i) samples.push_back(data.get(i));
    out.push_back(collate(samples));
  }
  return out;
}

}  // namespace

EvalResults NextFrameEval::evaluate(BuildContext& ctx) {
  auto enc = std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(options_.encoder, "video.next_frame_mse"));
  SSLAB_CHECK(enc, "video.next_frame_mse: encoder '", options_.encoder, "' is not a video.encoder");
  auto dec = std::dynamic_pointer_cast<FrameDecoder>(ctx.head(options_.decoder, "video.next_frame_mse"));
  SSLAB_CHECK(dec, "video.next_frame_mse: head '", options_.decoder, "' is not a video.frame_decoder");
  Dataset& test = *ctx.dataset("test", "video.next_frame_mse");
  const int64_t k = options_.context_frames, n = options_.predict_frames;
  torch::NoGradGuard no_grad;
  enc->eval();
  dec->eval();
  torch::Tensor model_sum = torch::zeros({n}, torch::kFloat64), copy_sum = torch::zeros({n}, torch::kFloat64);
  int64_t clips = 0;
  const int64_t total = options_.test_limit > 0 ? std::min(options_.test_limit, test.size()) : test.size();
  for (int64_t s = 0; s < total; s += options_.batch_size) {
    std::vector<Sample> samples;
    for (int64_t i = s; i < std::min(total, s + options_.batch_size); ++i) samples.push_back(test.get(i));
    Batch b = collate(samples);
    torch::Tensor clip = b.at(enc->input()).to(ctx.device);
    Rollout r = rollout(*enc, *dec, clip, k, n, "prediction");
    torch::Tensor truth = clip.slice(1, k, k + n);
    torch::Tensor pred = dec->pixels(r.logits);
    const int64_t bs = clip.size(0);
    model_sum += mse_per_frame(pred, truth).to(torch::kCPU, torch::kFloat64) * bs;
    torch::Tensor last = clip.select(1, k - 1).unsqueeze(1).expand_as(truth);
    copy_sum += mse_per_frame(last, truth).to(torch::kCPU, torch::kFloat64) * bs;
    clips += bs;
  }
  enc->train();
  dec->train();
  SSLAB_CHECK(clips > 0, "video.next_frame_mse: the test split is empty");
  EvalResults res;
  auto fill = [&](const std::string& name, const torch::Tensor& sum) {
    torch::Tensor per_step = sum / static_cast<double>(clips);
    res[name]["mse_per_frame"] = per_step.mean().item<double>();
    for (int64_t j = 0; j < n; ++j) res[name]["mse_step_" + std::to_string(j + 1)] = per_step[j].item<double>();
  };
  fill("next_frames/model", model_sum);
  fill("next_frames/copy_last_frame", copy_sum);
  res["next_frames/model"]["clips"] = static_cast<double>(clips);
  return res;
}

torch::Tensor multilabel_probe_scores(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const ProbeOptions& o) {
  torch::manual_seed(o.seed);
  torch::Tensor mean = train_x.mean(0, true), std = train_x.std(0, true, true) + 1e-6;
  torch::Tensor xtr = (train_x - mean) / std, xte = (test_x - mean) / std;
  torch::nn::Linear head(train_x.size(1), train_y.size(1));
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  const int64_t n = xtr.size(0);
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const int64_t epochs = std::max<int64_t>(o.epochs, (500 + steps_per_epoch - 1) / steps_per_epoch);
  const int64_t total = epochs * steps_per_epoch;
  int64_t step = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    torch::Tensor perm = torch::randperm(n);
    for (int64_t s = 0; s < n; s += o.batch_size) {
      const double lr = 0.5 * o.lr * (1 + std::cos(M_PI * static_cast<double>(step++) / total));
      for (auto& g : opt.param_groups()) g.options().set_lr(lr);
      torch::Tensor idx = perm.slice(0, s, std::min(n, s + o.batch_size));
      torch::Tensor loss = torch::nn::functional::binary_cross_entropy_with_logits(head(xtr.index_select(0, idx)),
                                                                                   train_y.index_select(0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  torch::NoGradGuard no_grad;
  return head(xte);
}

double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets) {
  double sum = 0;
  int64_t classes = 0;
  for (int64_t c = 0; c < scores.size(1); ++c) {
    torch::Tensor y = targets.select(1, c).to(torch::kFloat64);
    const double positives = y.sum().item<double>();
    if (positives <= 0) continue;
    torch::Tensor order = scores.select(1, c).argsort(0, /*descending=*/true);
    torch::Tensor hits = y.index_select(0, order);
    torch::Tensor precision = hits.cumsum(0) / torch::arange(1, hits.size(0) + 1, torch::kFloat64);
    sum += (precision * hits).sum().item<double>() / positives;
    ++classes;
  }
  return classes ? sum / classes : 0.0;
}

double recall_at_m(const torch::Tensor& scores, const torch::Tensor& targets) {
  int64_t found = 0, total = 0;
  torch::Tensor order = scores.argsort(1, /*descending=*/true);
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const int64_t m = targets[i].sum().item<int64_t>();
    if (m == 0) continue;
    found += targets[i].index_select(0, order[i].slice(0, 0, m)).sum().item<int64_t>();
    total += m;
  }
  return total ? static_cast<double>(found) / static_cast<double>(total) : 0.0;
}

EvalResults ItemProbe::evaluate(BuildContext& ctx) {
  std::string name = options_.encoder;
  if (name.empty()) {
    SSLAB_CHECK(ctx.encoders.size() == 1, "video.item_probe: the recipe has ", ctx.encoders.size(),
                " encoders; set encoder = \"<name>\"");
    name = ctx.encoders.begin()->first;
  }
  auto enc = ctx.encoder(name, "video.item_probe");
  std::shared_ptr<Encoder> random;
  if (options_.random_encoder) {
    auto it = ctx.builders.find("encoders." + name);
    SSLAB_ASSERT(it != ctx.builders.end(), "no builder for encoder ", name);
    torch::manual_seed(ctx.seed + 7919);
    random = std::dynamic_pointer_cast<Encoder>(it->second());
    random->to(ctx.device);
    random->eval();
  }
  enc->eval();
  struct Features {
    std::map<std::string, std::vector<torch::Tensor>> x;
    std::vector<torch::Tensor> y;
  };
  auto run = [&](Dataset& data, int64_t limit) {
    torch::NoGradGuard no_grad;
    Features f;
    for (const Batch& b : batches(data, limit, options_.batch_size)) {
      SSLAB_CHECK(b.has(options_.labels), "video.item_probe: the samples have no key '", options_.labels, "'");
      f.y.push_back(b.at(options_.labels).to(torch::kFloat32));
      Batch dev = ctx.device.is_cpu() ? b : b.to(ctx.device);
      f.x["encoder"].push_back(enc->embed(dev).to(torch::kCPU, torch::kFloat32));
      if (random) f.x["random"].push_back(random->embed(dev).to(torch::kCPU, torch::kFloat32));
      if (options_.raw_baseline) f.x["raw"].push_back(b.at(enc->input()).mean(1).flatten(1).to(torch::kFloat32));
    }
    return f;
  };
  Features tr = run(*ctx.dataset("train", "video.item_probe"), options_.train_limit);
  Features te = run(*ctx.dataset("test", "video.item_probe"), options_.test_limit);
  enc->train();
  torch::Tensor ytr = torch::cat(tr.y), yte = torch::cat(te.y);
  EvalResults res;
  auto probe = [&](const std::string& part, const std::string& result) {
    torch::Tensor scores =
        multilabel_probe_scores(torch::cat(tr.x.at(part)), ytr, torch::cat(te.x.at(part)), options_.probe);
    res["items/" + result]["map"] = mean_average_precision(scores, yte);
    res["items/" + result]["recall_at_m"] = recall_at_m(scores, yte);
  };
  probe("encoder", "linear_probe");
  res["items/linear_probe"]["train_clips"] = static_cast<double>(ytr.size(0));
  res["items/linear_probe"]["test_clips"] = static_cast<double>(yte.size(0));
  if (random) probe("random", "baseline_random_encoder");
  if (options_.raw_baseline) probe("raw", "baseline_raw_mean_frame");
  // Scores that ignore the clip (training class frequencies): the floor.
  torch::Tensor prior = ytr.mean(0, true).expand({yte.size(0), ytr.size(1)});
  res["items/class_prior"]["map"] = mean_average_precision(prior + 1e-9 * torch::rand(prior.sizes()), yte);
  res["items/class_prior"]["recall_at_m"] = recall_at_m(prior, yte);
  return res;
}

}  // namespace sslab::video
