// The joint-embedding plugin ("ssl"): the MLP projector/predictor head, the
// two-view objectives SimCLR (ssl.infonce), MoCo (ssl.moco), BYOL (ssl.byol),
// SimSiam (ssl.simsiam), VICReg (ssl.vicreg), Barlow Twins (ssl.barlow_twins),
// SwAV (ssl.swav) and DINO (ssl.dino, ssl.dino_head; clustering.cpp)
// on the SDK's two-view plumbing (sslab/two_view.h) and losses (sslab/ssl.h),
// CLIP (ssl.clip) between two encoders of a paired sample (ssl.paired), and
// cross-modal retrieval (ssl.retrieval). They work on any encoder.
#include <cmath>

#include <sslab/components.h>
#include <sslab/distributed.h>
#include <sslab/evaluation.h>
#include <sslab/nn/mlp.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>
#include <sslab/ssl.h>
#include <sslab/two_view.h>

#include "clustering.h"
#include "paired.h"

namespace sslab::ssl_plugin {

int64_t head_input_dim(const std::string& encoder, int64_t in_dim, const Config& cfg, BuildContext& ctx) {
  if (!encoder.empty()) in_dim = ctx.encoder(encoder, cfg.locate("encoder"))->embed_dim();
  SSLAB_CHECK(in_dim > 0, cfg.locate("in_dim"),
              ": give in_dim, or name the encoder this head reads with encoder = \"...\"");
  return in_dim;
}

namespace {

using Predictor = TwoViewKeys::Predictor;

// ---------------------------------------------------------------- head

struct MlpHeadOptions {
  std::string encoder;
  int64_t in_dim = 0;
  std::vector<int64_t> hidden{2048};
  int64_t out_dim = 128;
  std::string norm = "batch";
  std::string activation = "relu";
  bool last_norm = false;
  bool sync_bn = true;
};

Settings<MlpHeadOptions> mlp_head_settings() {
  using O = MlpHeadOptions;
  Settings<O> s;
  s.add("encoder", &O::encoder, "encoder whose embedding this head reads (sets the input size)");
  s.add("in_dim", &O::in_dim, "input size when no encoder is named").min(0);
  s.add("hidden", &O::hidden, "hidden layer sizes").min(1);
  s.add("out_dim", &O::out_dim, "output size").min(1);
  s.add("norm", &O::norm, "normalisation after hidden linears").choices({"none", "batch", "layer"});
  s.add("activation", &O::activation, "activation").choices({"relu", "gelu", "none"});
  s.add("last_norm", &O::last_norm, "batch-normalise the output too (affine-free, SimCLR v2 / Barlow Twins style)");
  s.add("sync_bn", &O::sync_bn, "batch norm statistics over the global batch in data-parallel runs");
  return s;
}

class MlpHead : public Head {
 public:
  MlpHead(const nn::MlpOptions& options) : mlp(register_module("mlp", nn::Mlp(options))) {}
  torch::Tensor forward(const torch::Tensor& x) override { return mlp->forward(x); }
  nn::Mlp mlp;
};

std::shared_ptr<Head> make_mlp_head(const MlpHeadOptions& h, const Config& cfg, BuildContext& ctx) {
  std::vector<int64_t> dims{head_input_dim(h.encoder, h.in_dim, cfg, ctx)};
  dims.insert(dims.end(), h.hidden.begin(), h.hidden.end());
  dims.push_back(h.out_dim);
  nn::MlpOptions o(dims);
  o.norm(h.norm).activation(h.activation).last_norm(h.last_norm);
  if (h.sync_bn) o.sync(ctx.comm());
  return std::make_shared<MlpHead>(o);
}

// ---------------------------------------------------------------- two-view objectives

struct TemperatureOptions {
  double temperature = 0.2;
};

class InfoNce : public TwoViewObjective {
 public:
  static constexpr TwoViewKeys kKeys{};
  InfoNce(const Config& cfg, BuildContext& ctx, const TemperatureOptions& o)
      : TwoViewObjective(cfg, ctx, kKeys), t_(o.temperature) {}
  ObjectiveOutput loss(const torch::Tensor& z1, const torch::Tensor& z2) override {
    return {ssl::nt_xent(z1, z2, t_, comm()), {{"pair_acc", ssl::pair_accuracy(z1, z2)}}};
  }

 private:
  double t_;
};

struct MocoOptions {
  double temperature = 0.2;
  int64_t queue_size = 4096;
};

// Needs the EMA target and a queue besides the projections: holds the branch.
class Moco : public Objective {
 public:
  static constexpr TwoViewKeys kKeys{Predictor::Optional, true, 0.99};
  Moco(const Config& cfg, BuildContext& ctx, const MocoOptions& o)
      : b_(cfg, ctx, kKeys), comm_(ctx.comm()), t_(o.temperature), queue_size_(o.queue_size) {
    if (queue_size_ > 0) {
      // The keys' size: the projector's output, else the encoder's embedding.
      int64_t dim = b_.encoder()->embed_dim();
      if (b_.projector()) {
        auto mlp = std::dynamic_pointer_cast<MlpHead>(b_.projector());
        SSLAB_CHECK(mlp, cfg.locate("projector"), ": the MoCo queue needs an ssl.mlp projector (its out_dim sizes the keys)");
        dim = mlp->mlp->options.dims().back();
      }
      // Random unit vectors to start with, as in MoCo; buffers, so checkpointed.
      queue_ = register_buffer("queue", torch::nn::functional::normalize(
                                            torch::randn({queue_size_, dim}),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1)));
      ptr_ = register_buffer("queue_ptr", torch::zeros({1}, torch::kLong));
    }
  }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = b_.views(batch);
    ObjectiveOutput out;
    torch::Tensor q1 = b_.predict(b_.project(v0));
    torch::Tensor k2 = b_.target(v1);
    if (queue_size_ > 0) {
      // MoCo v2: one direction, negatives from the queue of past keys.
      out.loss = ssl::moco_infonce(q1, k2, queue_, t_, comm_.get());
      enqueue(k2);
    } else {
      // MoCo v3: symmetric, in-batch negatives, loss scaled by 2 * temperature.
      torch::Tensor q2 = b_.predict(b_.project(v1));
      torch::Tensor k1 = b_.target(v0);
      out.loss = 2 * t_ * (ssl::moco_infonce(q1, k2, {}, t_, comm_.get()) + ssl::moco_infonce(q2, k1, {}, t_, comm_.get())) / 2;
    }
    out.metrics["pair_acc"] = ssl::pair_accuracy(q1, k2);
    return out;
  }

 private:
  void enqueue(const torch::Tensor& k) {
    torch::NoGradGuard no_grad;
    torch::Tensor keys = torch::nn::functional::normalize(k, torch::nn::functional::NormalizeFuncOptions().dim(1));
    if (comm_ && comm_->world_size() > 1) keys = torch::cat(comm_->all_gather(keys));
    int64_t n = keys.size(0), p = ptr_.item<int64_t>();
    SSLAB_CHECK(n <= queue_size_, "ssl.moco: queue_size (", queue_size_, ") must hold at least one global batch (", n, ")");
    torch::Tensor rows = (torch::arange(n, torch::kLong) + p).remainder(queue_size_).to(queue_.device());
    queue_.index_copy_(0, rows, keys.to(queue_.dtype()));
    ptr_.fill_((p + n) % queue_size_);
  }
  TwoViewBranch b_;
  std::shared_ptr<Communicator> comm_;
  double t_;
  int64_t queue_size_ = 0;
  torch::Tensor queue_, ptr_;
};

// Needs the EMA target's projections of both views: holds the branch.
class Byol : public Objective {
 public:
  static constexpr TwoViewKeys kKeys{Predictor::Required, true, 0.996};
  Byol(const Config& cfg, BuildContext& ctx) : b_(cfg, ctx, kKeys) {}
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = b_.views(batch);
    torch::Tensor p1 = b_.predict(b_.project(v0)), p2 = b_.predict(b_.project(v1));
    torch::Tensor z1 = b_.target(v0), z2 = b_.target(v1);
    ObjectiveOutput out;
    out.loss = (ssl::byol_loss(p1, z2) + ssl::byol_loss(p2, z1)) / 2;
    out.metrics["pair_acc"] = ssl::pair_accuracy(p1, z2);
    return out;
  }

 private:
  TwoViewBranch b_;
};

class SimSiam : public TwoViewObjective {
 public:
  static constexpr TwoViewKeys kKeys{Predictor::Required};
  SimSiam(const Config& cfg, BuildContext& ctx) : TwoViewObjective(cfg, ctx, kKeys) {}
  ObjectiveOutput loss(const torch::Tensor& z1, const torch::Tensor& z2) override {
    torch::Tensor p1 = branch().predict(z1), p2 = branch().predict(z2);
    ObjectiveOutput out;
    out.loss = (ssl::negative_cosine(p1, z2) + ssl::negative_cosine(p2, z1)) / 2;  // stop-gradient on z
    torch::NoGradGuard g;
    // Collapse monitor: std of the normalised projections (1/sqrt(D) healthy, 0 collapsed).
    out.metrics["z_std"] = torch::nn::functional::normalize(z1, torch::nn::functional::NormalizeFuncOptions().dim(1))
                               .std(0).mean().item<double>();
    return out;
  }
};

struct VicRegOptions {
  double sim_coeff = 25.0;
  double std_coeff = 25.0;
  double cov_coeff = 1.0;
};

class VicReg : public TwoViewObjective {
 public:
  static constexpr TwoViewKeys kKeys{};
  VicReg(const Config& cfg, BuildContext& ctx, const VicRegOptions& o) : TwoViewObjective(cfg, ctx, kKeys), o_(o) {}
  ObjectiveOutput loss(const torch::Tensor& z1, const torch::Tensor& z2) override {
    ssl::VicRegTerms t = ssl::vicreg(z1, z2, o_.sim_coeff, o_.std_coeff, o_.cov_coeff, comm());
    return {t.loss,
            {{"invariance", t.invariance.item<double>()},
             {"variance", t.variance.item<double>()},
             {"covariance", t.covariance.item<double>()}}};
  }

 private:
  VicRegOptions o_;
};

struct BarlowTwinsOptions {
  double lambda = 0.0051;
};

class BarlowTwins : public TwoViewObjective {
 public:
  static constexpr TwoViewKeys kKeys{};
  BarlowTwins(const Config& cfg, BuildContext& ctx, const BarlowTwinsOptions& o)
      : TwoViewObjective(cfg, ctx, kKeys), lambda_(o.lambda) {}
  ObjectiveOutput loss(const torch::Tensor& z1, const torch::Tensor& z2) override {
    return {ssl::barlow_twins(z1, z2, lambda_, comm()), {}};
  }

 private:
  double lambda_;
};

// ---------------------------------------------------------------- CLIP

// The two encoders and their projector heads of a paired sample.
struct PairOptions {
  std::string encoder_a, encoder_b, projector_a, projector_b;
};

template <typename O>
void add_pair_keys(Settings<O>& s, const std::string& what_a, const std::string& what_b, const std::string& heads) {
  auto at = [](std::string PairOptions::*f) { return [f](O& o) -> std::string& { return o.pair.*f; }; };
  s.add("encoder_a", at(&PairOptions::encoder_a), what_a).required();
  s.add("encoder_b", at(&PairOptions::encoder_b), what_b).required();
  s.add("projector_a", at(&PairOptions::projector_a), "projector head of encoder_a" + heads).required();
  s.add("projector_b", at(&PairOptions::projector_b), "projector head of encoder_b").required();
}

struct ClipOptions {
  PairOptions pair;
  double temperature = 0.07;
  double max_logit_scale = 100.0;
};

// CLIP between two encoders of a paired sample, each through its projector
// head to a shared size, with a learnable temperature.
class Clip : public Objective {
 public:
  Clip(const Config& cfg, BuildContext& ctx, const ClipOptions& o) : comm_(ctx.comm()), max_scale_(o.max_logit_scale) {
    a_ = ctx.encoder(o.pair.encoder_a, cfg.locate("encoder_a"));
    b_ = ctx.encoder(o.pair.encoder_b, cfg.locate("encoder_b"));
    pa_ = ctx.head(o.pair.projector_a, cfg.locate("projector_a"));
    pb_ = ctx.head(o.pair.projector_b, cfg.locate("projector_b"));
    logit_scale_ = register_parameter("logit_scale", torch::full({}, std::log(1.0 / o.temperature)));
  }
  ObjectiveOutput compute(const Batch& batch) override {
    torch::Tensor za = pa_->forward(a_->embed(batch)), zb = pb_->forward(b_->embed(batch));
    SSLAB_CHECK(za.size(1) == zb.size(1), "ssl.clip: projector_a gives ", za.size(1), " features but projector_b ",
                zb.size(1), "; give both heads the same out_dim");
    torch::Tensor scale = logit_scale_.exp().clamp_max(max_scale_);
    ObjectiveOutput out;
    out.loss = ssl::clip_loss(za, zb, scale, comm_.get());
    out.metrics["acc_a2b"] = ssl::pair_accuracy(za, zb);
    out.metrics["acc_b2a"] = ssl::pair_accuracy(zb, za);
    out.metrics["temperature"] = 1.0 / scale.item<double>();
    return out;
  }

 private:
  std::shared_ptr<Communicator> comm_;
  double max_scale_;
  std::shared_ptr<Encoder> a_, b_;
  std::shared_ptr<Head> pa_, pb_;
  torch::Tensor logit_scale_;
};

// ---------------------------------------------------------------- retrieval

struct RetrievalOptions {
  PairOptions pair;
  std::string split = "test";
  int64_t limit = 1000;
  std::vector<int64_t> k{1, 5, 10};
  int64_t batch_size = 256;
  std::string name = "retrieval";
  std::string match_labels;
};

// Cross-modal retrieval on held-out pairs: Recall@K in both directions of
// the cosine similarity between the two projected embeddings, next to chance.
class Retrieval : public Evaluator {
 public:
  Retrieval(const Config& cfg, RetrievalOptions o) : cfg_(cfg), o_(std::move(o)) {}
  EvalResults evaluate(BuildContext& ctx) override {
    auto data = ctx.dataset(o_.split, cfg_.locate("split"));
    auto ea = ctx.encoder(o_.pair.encoder_a, cfg_.locate("encoder_a"));
    auto eb = ctx.encoder(o_.pair.encoder_b, cfg_.locate("encoder_b"));
    auto pa = ctx.head(o_.pair.projector_a, cfg_.locate("projector_a"));
    auto pb = ctx.head(o_.pair.projector_b, cfg_.locate("projector_b"));
    for (torch::nn::Module* m : std::vector<torch::nn::Module*>{ea.get(), eb.get(), pa.get(), pb.get()}) m->eval();
    int64_t limit = o_.limit, bs = o_.batch_size;
    // One pass over the pairs (each sample is read and decoded once): both
    // projections and, with match_labels, the label, side by side.
    const std::string& match = o_.match_labels;
    int64_t da = 0, db = 0;
    torch::Tensor all = embed_dataset(
        *data, limit, bs, ctx.device(),
        [&](const Batch& b) {
          torch::Tensor a = pa->forward(ea->embed(b)), z = pb->forward(eb->embed(b));
          da = a.size(1), db = z.size(1);
          if (match.empty()) return torch::cat({a, z}, 1);
          SSLAB_CHECK(b.has(match), cfg_.locate("match_labels"), ": the ", o_.split,
                      " samples have no '", match, "'");
          return torch::cat({a, z, b.at(match).reshape({b.size, -1}).to(a.device(), torch::kFloat32)}, 1);
        },
        nullptr);
    torch::Tensor za = all.slice(1, 0, da), zb = all.slice(1, da, da + db);
    EvalResults r;
    const std::string& name = o_.name;
    int64_t n = za.size(0);
    for (bool a2b : {true, false}) {
      auto rec = ssl::recall_at(a2b ? za : zb, a2b ? zb : za, o_.k);
      auto& m = r[name + (a2b ? "/a_to_b" : "/b_to_a")];
      for (const auto& [k, v] : rec) {
        m["recall@" + std::to_string(k)] = v;
        m["chance@" + std::to_string(k)] = std::min(1.0, static_cast<double>(k) / n);
      }
      m["pairs"] = static_cast<double>(n);
    }
    // Label-level retrieval: a hit is any key with the query's label.
    if (!match.empty()) {
      torch::Tensor labels = all.slice(1, da + db);
      auto chance = ssl::label_chance_at(labels, o_.k);
      for (bool a2b : {true, false}) {
        auto rec = ssl::label_recall_at(a2b ? za : zb, a2b ? zb : za, labels, o_.k);
        auto& m = r[name + (a2b ? "/a_to_b" : "/b_to_a")];
        for (const auto& [k, v] : rec) {
          m["label_recall@" + std::to_string(k)] = v;
          m["label_chance@" + std::to_string(k)] = chance.at(k);
        }
      }
    }
    return r;
  }

 private:
  Config cfg_;  // for the locations of its keys in errors
  RetrievalOptions o_;
};

}  // namespace

void register_components(Registrar& r) {
  r.dataset("ssl.paired",
            "samples of several datasets at the same index, merged (an audio clip + its transcript): every part "
            "must have the same size and order",
            paired_schema(), make_paired_dataset);

  Settings<MlpHeadOptions> mlp = mlp_head_settings();
  r.head("ssl.mlp", "MLP projector/predictor head: Linear -> [BatchNorm] -> ReLU ... -> Linear", mlp.schema(),
         [mlp](const Config& c, BuildContext& x) { return make_mlp_head(mlp.read(c), c, x); });

  Settings<TemperatureOptions> infonce;
  infonce.add("temperature", &TemperatureOptions::temperature, "softmax temperature").greater_than(0);
  r.objective("ssl.infonce", "SimCLR NT-Xent between two views (negatives: every other view in the global batch)",
              two_view_schema(InfoNce::kKeys).merge(infonce.schema()), [infonce](const Config& c, BuildContext& x) {
                return std::make_shared<InfoNce>(c, x, infonce.read(c));
              });

  Settings<MocoOptions> moco;
  moco.add("temperature", &MocoOptions::temperature, "softmax temperature").greater_than(0);
  moco.add("queue_size", &MocoOptions::queue_size,
           "MoCo v2 queue of negatives (0: MoCo v3, symmetric with in-batch negatives)")
      .min(0);
  r.objective("ssl.moco", "MoCo: query vs momentum-encoder key, negatives from a queue (v2) or the batch (v3)",
              two_view_schema(Moco::kKeys).merge(moco.schema()),
              [moco](const Config& c, BuildContext& x) { return std::make_shared<Moco>(c, x, moco.read(c)); });

  r.objective("ssl.byol", "BYOL: online predictor regresses the EMA target's projection of the other view",
              two_view_schema(Byol::kKeys), [](const Config& c, BuildContext& x) { return std::make_shared<Byol>(c, x); });

  r.objective("ssl.simsiam", "SimSiam: predictor vs stop-gradient projection of the other view",
              two_view_schema(SimSiam::kKeys),
              [](const Config& c, BuildContext& x) { return std::make_shared<SimSiam>(c, x); });

  Settings<VicRegOptions> vicreg;
  vicreg.add("sim_coeff", &VicRegOptions::sim_coeff, "invariance (MSE) weight").min(0);
  vicreg.add("std_coeff", &VicRegOptions::std_coeff, "variance hinge weight").min(0);
  vicreg.add("cov_coeff", &VicRegOptions::cov_coeff, "covariance weight").min(0);
  r.objective("ssl.vicreg", "VICReg: invariance + variance + covariance of two views' expansions",
              two_view_schema(VicReg::kKeys).merge(vicreg.schema()),
              [vicreg](const Config& c, BuildContext& x) { return std::make_shared<VicReg>(c, x, vicreg.read(c)); });

  Settings<BarlowTwinsOptions> barlow;
  barlow.add("lambda", &BarlowTwinsOptions::lambda, "weight of the off-diagonal (redundancy) term").min(0);
  r.objective("ssl.barlow_twins", "Barlow Twins: cross-correlation of two views towards the identity",
              two_view_schema(BarlowTwins::kKeys).merge(barlow.schema()), [barlow](const Config& c, BuildContext& x) {
                return std::make_shared<BarlowTwins>(c, x, barlow.read(c));
              });

  Settings<ClipOptions> clip;
  add_pair_keys(clip, "first encoder (e.g. audio)", "second encoder (e.g. text)",
                ", projecting to the shared space (same out_dim as projector_b)");
  clip.add("temperature", &ClipOptions::temperature, "initial temperature (learnable)").greater_than(0);
  clip.add("max_logit_scale", &ClipOptions::max_logit_scale, "cap on 1 / temperature").greater_than(0);
  r.objective("ssl.clip", "CLIP: symmetric InfoNCE between two encoders of paired samples", clip.schema(),
              [clip](const Config& c, BuildContext& x) { return std::make_shared<Clip>(c, x, clip.read(c)); });

  using R = RetrievalOptions;
  Settings<R> ret;
  add_pair_keys(ret, "first encoder", "second encoder", " (as in the ssl.clip objective)");
  ret.add("split", &R::split, "held-out split of paired samples");
  ret.add("limit", &R::limit, "pairs used (0: all); chance of Recall@K is K / pairs").min(0);
  ret.add("k", &R::k, "the K of Recall@K").min(1);
  ret.add("batch_size", &R::batch_size, "batch size for embedding").min(1);
  ret.add("name", &R::name, "name of the results in eval.json");
  ret.add("match_labels", &R::match_labels,
          "also count a key with the query's value of this label (e.g. label.items) as found: "
          "label_recall@K beside label_chance@K");
  r.evaluator("ssl.retrieval", "cross-modal retrieval Recall@K in both directions on held-out pairs", ret.schema(),
              [ret](const Config& c, BuildContext&) { return std::make_shared<Retrieval>(c, ret.read(c)); });

  register_clustering(r);
}

}  // namespace sslab::ssl_plugin

SSLAB_PLUGIN("ssl", "0.1.0",
             "Joint-embedding components: MLP head, SimCLR, MoCo, BYOL, SimSiam, VICReg, Barlow Twins, CLIP, "
             "paired datasets, cross-modal retrieval",
             sslab::ssl_plugin::register_components)
