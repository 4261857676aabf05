#include "sslab/two_view.h"

#include "sslab/settings.h"

namespace sslab {

namespace {

// The shared keys, declared once: schema and reader in one.
Settings<TwoViewOptions> two_view_settings(const TwoViewKeys& keys) {
  TwoViewOptions prototype;
  prototype.ema.momentum = keys.momentum;
  Settings<TwoViewOptions> s(prototype);
  s.add("encoder", &TwoViewOptions::encoder, "encoder to train (by recipe name)").required();
  s.add("input", &TwoViewOptions::input, "batch key whose views are used (default: the encoder's input)");
  s.add("projector", &TwoViewOptions::projector, "projector head (by name); empty: the encoder's embedding itself");
  if (keys.predictor != TwoViewKeys::Predictor::None)
    s.add("predictor", &TwoViewOptions::predictor, "predictor head on the online branch (by name)");
  if (keys.ema) {
    s.add("momentum", [](TwoViewOptions& o) -> double& { return o.ema.momentum; },
          "EMA momentum of the target encoder and projector")
        .min(0)
        .max(1);
    s.add("momentum_schedule", [](TwoViewOptions& o) -> std::string& { return o.ema.schedule; },
          "cosine: momentum rises to 1 over training (BYOL)")
        .choices({"cosine", "constant"});
  }
  return s;
}

}  // namespace

Schema two_view_schema(const TwoViewKeys& keys) { return two_view_settings(keys).schema(); }

TwoViewBranch::TwoViewBranch(const Config& cfg, BuildContext& ctx, const TwoViewKeys& keys)
    : options_(two_view_settings(keys).read(cfg)) {
  encoder_ = ctx.encoder(options_.encoder, cfg.locate("encoder"));
  key_ = options_.input.empty() ? encoder_->input() : options_.input;
  if (!options_.projector.empty()) projector_ = ctx.head(options_.projector, cfg.locate("projector"));
  if (keys.predictor == TwoViewKeys::Predictor::Required)
    SSLAB_CHECK(!options_.predictor.empty(), cfg.locate("predictor"),
                ": this objective needs a predictor head (e.g. [heads.predictor] type = \"ssl.mlp\")");
  if (!options_.predictor.empty()) predictor_ = ctx.head(options_.predictor, cfg.locate("predictor"));
  if (keys.ema) {
    target_encoder_ = std::dynamic_pointer_cast<Encoder>(ctx.ema_target(options_.encoder, options_.ema, cfg.locate("encoder")));
    SSLAB_ASSERT(target_encoder_, "EMA copy of encoder ", options_.encoder, " is not an Encoder");
    if (projector_)
      target_projector_ =
          std::dynamic_pointer_cast<Head>(ctx.ema_target(options_.projector, options_.ema, cfg.locate("projector")));
  }
}

std::pair<Batch, Batch> TwoViewBranch::views(const Batch& batch) const {
  return {select_view(batch, key_, 0), select_view(batch, key_, 1)};
}

torch::Tensor TwoViewBranch::project(const Batch& view) {
  torch::Tensor h = encoder_->embed(view);
  return projector_ ? projector_->forward(h) : h;
}

torch::Tensor TwoViewBranch::predict(const torch::Tensor& z) { return predictor_ ? predictor_->forward(z) : z; }

torch::Tensor TwoViewBranch::target(const Batch& view) {
  SSLAB_ASSERT(target_encoder_, "TwoViewBranch::target needs TwoViewKeys::ema");
  torch::NoGradGuard no_grad;
  target_encoder_->train();
  torch::Tensor h = target_encoder_->embed(view);
  if (target_projector_) {
    target_projector_->train();
    h = target_projector_->forward(h);
  }
  return h.detach();
}

TwoViewObjective::TwoViewObjective(const Config& cfg, BuildContext& ctx, const TwoViewKeys& keys)
    : branch_(cfg, ctx, keys), comm_(ctx.comm()) {}

ObjectiveOutput TwoViewObjective::compute(const Batch& batch) {
  auto [v0, v1] = branch_.views(batch);
  torch::Tensor z0 = branch_.project(v0);
  torch::Tensor z1 = branch_.project(v1);
  return loss(z0, z1);
}

}  // namespace sslab
