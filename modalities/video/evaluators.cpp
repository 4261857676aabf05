#include "evaluators.h"

#include "model.h"

namespace sslab::video {

EvalResults NextFrameEval::evaluate(BuildContext& ctx) {
  const char* who = "video.next_frame_mse";
  auto enc = std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(options_.encoder, who));
  SSLAB_CHECK(enc, who, ": encoder '", options_.encoder, "' is not a video.encoder");
  auto dec = std::dynamic_pointer_cast<FrameDecoder>(ctx.head(options_.decoder, who));
  SSLAB_CHECK(dec, who, ": head '", options_.decoder, "' is not a video.frame_decoder");
  const int64_t k = options_.context_frames, n = options_.predict_frames;
  torch::NoGradGuard no_grad;
  EvalMode eval_mode({enc.get(), dec.get()});
  torch::Tensor model_sum = torch::zeros({n}, torch::kFloat64), copy_sum = torch::zeros({n}, torch::kFloat64);
  int64_t clips = 0;
  for_each_batch(*ctx.dataset("test", who), options_.test_limit, options_.batch_size, [&](const Batch& b) {
    torch::Tensor clip = b.at(enc->input()).to(ctx.device());
    Rollout r = rollout(*enc, *dec, clip, k, n, "prediction");
    torch::Tensor truth = clip.slice(1, k, k + n);
    torch::Tensor pred = dec->pixels(r.logits);
    const int64_t bs = clip.size(0);
    model_sum += mse_per_frame(pred, truth).to(torch::kCPU, torch::kFloat64) * bs;
    torch::Tensor last = clip.select(1, k - 1).unsqueeze(1).expand_as(truth);
    copy_sum += mse_per_frame(last, truth).to(torch::kCPU, torch::kFloat64) * bs;
    clips += bs;
  });
  SSLAB_CHECK(clips > 0, who, ": the test split is empty");
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

EvalResults ItemProbe::evaluate(BuildContext& ctx) {
  const char* who = "video.item_probe";
  ProbeTarget target(ctx, options_.encoder, options_.settings, who);
  std::vector<FeatureSpec> specs = target.features();
  if (options_.raw_baseline)  // the mean frame's pixels
    specs.push_back({"raw", [key = target.input()](const Batch& b) { return b.at(key).mean(1).flatten(1); }, false});
  const ProbeSettings& ps = options_.settings;
  const SplitFeatures f = embed_splits(ctx, ps, specs, {options_.labels}, who);
  const Features &tr = f.train, &te = f.test;
  torch::Tensor ytr = tr.label(options_.labels).to(torch::kFloat32), yte = te.label(options_.labels).to(torch::kFloat32);
  ProbeOptions po = ps.probe;
  po.seed = ctx.seed();
  EvalResults res;
  auto probe = [&](const std::string& part, const std::string& result) {
    torch::Tensor scores = multilabel_probe_scores(tr.at(part), ytr, te.at(part), po);
    res["items/" + result]["map"] = mean_average_precision(scores, yte);
    res["items/" + result]["recall_at_m"] = recall_at_m(scores, yte);
  };
  probe("encoder", "linear_probe");
  res["items/linear_probe"]["train_clips"] = static_cast<double>(ytr.size(0));
  res["items/linear_probe"]["test_clips"] = static_cast<double>(yte.size(0));
  if (target.has_random()) probe("random", "baseline_random_encoder");
  if (options_.raw_baseline) probe("raw", "baseline_raw_mean_frame");
  // Scores that ignore the clip (training class frequencies): the floor.
  torch::Tensor prior = ytr.mean(0, true).expand({yte.size(0), ytr.size(1)});
  res["items/class_prior"]["map"] = mean_average_precision(prior + 1e-9 * torch::rand(prior.sizes()), yte);
  res["items/class_prior"]["recall_at_m"] = recall_at_m(prior, yte);
  return res;
}

}  // namespace sslab::video
