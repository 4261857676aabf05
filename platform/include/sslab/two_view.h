// Two-view (joint-embedding) plumbing for objectives: one encoder, an
// optional projector and predictor head named in the recipe, the two views
// of its input key made by the loader from [views] ("image@0", "image@1"),
// and EMA targets of encoder and projector on demand.
//
// A new two-view loss is a short class: derive from TwoViewObjective and
// implement loss() on the two views' projections.
//
//   class CosineViews : public sslab::TwoViewObjective {
//    public:
//     using TwoViewObjective::TwoViewObjective;
//     sslab::ObjectiveOutput loss(const torch::Tensor& z0, const torch::Tensor& z1) override {
//       return {-torch::cosine_similarity(z0, z1, 1).mean(), {}};
//     }
//   };
//   r.objective("mine.cosine_views", "...", sslab::two_view_schema(),
//               [](const Config& c, BuildContext& ctx) { return std::make_shared<CosineViews>(c, ctx); });
//
// Objectives that need more than the two projections (EMA targets, a queue)
// hold a TwoViewBranch themselves.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "sslab/components.h"
#include "sslab/export.h"
#include "sslab/recipe.h"

namespace sslab {

// Which of the shared recipe keys a two-view objective has. Always: encoder
// (required), input (default: the encoder's input key), projector (default:
// none, the embedding itself).
struct TwoViewKeys {
  enum class Predictor { None, Optional, Required };
  // predictor: a head on the online branch (BYOL, SimSiam, MoCo v3).
  Predictor predictor = Predictor::None;
  // momentum, momentum_schedule: EMA targets of encoder and projector.
  bool ema = false;
  double momentum = 0.99;  // the default of `momentum`
};

// The shared keys, declared once: start an objective's schema with it and
// add the objective's own keys (schema.merge(settings.schema())).
SSLAB_API Schema two_view_schema(const TwoViewKeys& keys = {});

// The values of the shared keys.
struct TwoViewOptions {
  std::string encoder;
  std::string input;      // "" = the encoder's input key
  std::string projector;  // "" = none
  std::string predictor;  // "" = none
  EmaOptions ema{0.99, "cosine"};
};

// An encoder and its optional projector/predictor, plus EMA targets when the
// keys have momentum. Built from a Config validated against two_view_schema
// (with the same keys); errors name the recipe location.
class SSLAB_API TwoViewBranch {
 public:
  TwoViewBranch(const Config& cfg, BuildContext& ctx, const TwoViewKeys& keys = {});

  const TwoViewOptions& options() const { return options_; }
  // The batch key whose views are used.
  const std::string& key() const { return key_; }
  const std::shared_ptr<Encoder>& encoder() const { return encoder_; }
  const std::shared_ptr<Head>& projector() const { return projector_; }  // may be null
  const std::shared_ptr<Head>& predictor() const { return predictor_; }  // may be null

  // Views 0 and 1 of key() (UserError saying how to add them when absent).
  std::pair<Batch, Batch> views(const Batch& batch) const;
  // Encoder embedding of a view, through the projector when there is one.
  torch::Tensor project(const Batch& view);
  // The predictor on a projection (identity without a predictor).
  torch::Tensor predict(const torch::Tensor& z);
  // The EMA target's projection of a view, without gradient (only with
  // TwoViewKeys::ema). Target networks run in training mode, as the online
  // network (BYOL): batch norm on batch statistics.
  torch::Tensor target(const Batch& view);

 private:
  TwoViewOptions options_;
  std::string key_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Head> projector_, predictor_;
  std::shared_ptr<Encoder> target_encoder_;
  std::shared_ptr<Head> target_projector_;
};

// An objective on the projections of two views: compute() takes the views
// of the branch's key, projects each and calls loss(z0, z1). Subclasses
// implement loss() and use branch() (predict) and comm() as they need.
class SSLAB_API TwoViewObjective : public Objective {
 public:
  TwoViewObjective(const Config& cfg, BuildContext& ctx, const TwoViewKeys& keys = {});
  ObjectiveOutput compute(const Batch& batch) override;

 protected:
  virtual ObjectiveOutput loss(const torch::Tensor& z0, const torch::Tensor& z1) = 0;
  TwoViewBranch& branch() { return branch_; }
  // The process group in data-parallel runs (null otherwise), for losses
  // that gather negatives or batch statistics.
  Communicator* comm() const { return comm_.get(); }

 private:
  TwoViewBranch branch_;
  std::shared_ptr<Communicator> comm_;
};

}  // namespace sslab
