// The platform's built-in joint-embedding components ("ssl.*"): the MLP
// projector/predictor head and the objectives SimCLR (ssl.infonce), MoCo
// (ssl.moco), BYOL (ssl.byol), SimSiam (ssl.simsiam), VICReg (ssl.vicreg),
// Barlow Twins (ssl.barlow_twins) and CLIP (ssl.clip). They work on any
// encoder: two views of its input key ("image@0", "image@1", made by the
// loader from [views]) or, for CLIP, two encoders on a paired sample.
#include <cmath>

#include "sslab/components.h"
#include "sslab/distributed.h"
#include "sslab/evaluation.h"
#include "sslab/nn/mlp.h"
#include "sslab/ssl.h"

namespace sslab {

Batch select_view(const Batch& batch, const std::string& key, int view) {
  std::string vkey = key + "@" + std::to_string(view);
  SSLAB_CHECK(batch.has(vkey), "batch has no view '", vkey, "' of '", key, "': add `[views] ", key,
              " = 2` (and transforms for ", key, "@0, ", key, "@1 or ", key, "@*) to the recipe");
  Batch out = batch;
  for (const char* suffix : {"", ".length", ".mask"}) {
    auto it = batch.tensors.find(vkey + suffix);
    if (it != batch.tensors.end()) out.tensors[key + suffix] = it->second;
  }
  return out;
}

namespace {

// ---------------------------------------------------------------- head

class MlpHead : public Head {
 public:
  MlpHead(const nn::MlpOptions& options) : mlp(register_module("mlp", nn::Mlp(options))) {}
  torch::Tensor forward(const torch::Tensor& x) override { return mlp->forward(x); }
  nn::Mlp mlp;
};

Schema mlp_head_schema() {
  Schema s;
  s.string("encoder", std::string(""), "encoder whose embedding this head reads (sets the input size)");
  s.integer("in_dim", int64_t{0}, "input size when no encoder is named").min(0);
  s.integers("hidden", std::vector<int64_t>{2048}, "hidden layer sizes").min(1);
  s.integer("out_dim", int64_t{128}, "output size").min(1);
  s.string("norm", std::string("batch"), "normalisation after hidden linears").choices({"none", "batch", "layer"});
  s.string("activation", std::string("relu"), "activation").choices({"relu", "gelu", "none"});
  s.boolean("last_norm", false, "batch-normalise the output too (affine-free, SimCLR v2 / Barlow Twins style)");
  s.boolean("sync_bn", true, "batch norm statistics over the global batch in data-parallel runs");
  return s;
}

std::shared_ptr<Head> make_mlp_head(const Config& cfg, BuildContext& ctx) {
  int64_t in = cfg.get_int("in_dim");
  if (!cfg.get_string("encoder").empty()) in = ctx.encoder(cfg.get_string("encoder"), cfg.locate("encoder"))->embed_dim();
  SSLAB_CHECK(in > 0, cfg.locate("in_dim"), ": give in_dim, or name the encoder this head reads with encoder = \"...\"");
  std::vector<int64_t> dims{in};
  for (int64_t h : cfg.get_ints("hidden")) dims.push_back(h);
  dims.push_back(cfg.get_int("out_dim"));
  nn::MlpOptions o(dims);
  o.norm(cfg.get_string("norm")).activation(cfg.get_string("activation")).last_norm(cfg.get_bool("last_norm"));
  if (cfg.get_bool("sync_bn")) o.sync(ctx.comm());
  return std::make_shared<MlpHead>(o);
}

// ---------------------------------------------------------------- shared plumbing

// An encoder and its optional projector/predictor, plus EMA copies on demand.
struct Branch {
  std::string encoder_name, projector_name, predictor_name, key;
  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<Head> projector, predictor;
  std::shared_ptr<Encoder> target_encoder;
  std::shared_ptr<Head> target_projector;

  void build(const Config& cfg, BuildContext& ctx, bool predictor_required) {
    encoder_name = cfg.get_string("encoder");
    encoder = ctx.encoder(encoder_name, cfg.locate("encoder"));
    key = cfg.get_string("input").empty() ? encoder->input() : cfg.get_string("input");
    projector_name = cfg.get_string("projector");
    if (!projector_name.empty()) projector = ctx.head(projector_name, cfg.locate("projector"));
    if (cfg.schema().find("predictor")) {
      predictor_name = cfg.get_string("predictor");
      SSLAB_CHECK(!predictor_required || !predictor_name.empty(), cfg.locate("predictor"),
                  ": this objective needs a predictor head (e.g. [heads.predictor] type = \"ssl.mlp\")");
      if (!predictor_name.empty()) predictor = ctx.head(predictor_name, cfg.locate("predictor"));
    }
  }
  // EMA target of encoder (+ projector); momentum schedule by recipe.
  void make_targets(const Config& cfg, BuildContext& ctx) {
    EmaOptions ema{cfg.get_float("momentum"), cfg.get_string("momentum_schedule")};
    target_encoder = std::dynamic_pointer_cast<Encoder>(ctx.ema_target(encoder_name, ema, cfg.locate("encoder")));
    SSLAB_ASSERT(target_encoder, "EMA copy of encoder ", encoder_name, " is not an Encoder");
    if (projector)
      target_projector = std::dynamic_pointer_cast<Head>(ctx.ema_target(projector_name, ema, cfg.locate("projector")));
  }
  torch::Tensor project(const Batch& view) {
    torch::Tensor h = encoder->embed(view);
    return projector ? projector->forward(h) : h;
  }
  torch::Tensor predict(const torch::Tensor& z) { return predictor ? predictor->forward(z) : z; }
  torch::Tensor target(const Batch& view) {
    torch::NoGradGuard no_grad;
    target_encoder->train();  // as the online network (BYOL): batch norm on batch statistics
    torch::Tensor h = target_encoder->embed(view);
    if (target_projector) {
      target_projector->train();
      h = target_projector->forward(h);
    }
    return h.detach();
  }
};

void branch_keys(Schema& s, bool predictor, bool momentum, double default_momentum) {
  s.string("encoder", required, "encoder to train (by recipe name)");
  s.string("input", std::string(""), "batch key whose views are used (default: the encoder's input)");
  s.string("projector", std::string(""), "projector head (by name); empty: the encoder's embedding itself");
  if (predictor) s.string("predictor", std::string(""), "predictor head on the online branch (by name)");
  if (momentum) {
    s.number("momentum", default_momentum, "EMA momentum of the target encoder and projector").min(0).max(1);
    s.string("momentum_schedule", std::string("cosine"), "cosine: momentum rises to 1 over training (BYOL)")
        .choices({"cosine", "constant"});
  }
}

// Views 0 and 1 of the branch's key.
std::pair<Batch, Batch> two_views(const Batch& batch, const std::string& key) {
  return {select_view(batch, key, 0), select_view(batch, key, 1)};
}

// ---------------------------------------------------------------- objectives

class InfoNce : public Objective {
 public:
  InfoNce(const Config& cfg, BuildContext& ctx) : comm_(ctx.comm()), t_(cfg.get_float("temperature")) {
    b_.build(cfg, ctx, false);
  }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = two_views(batch, b_.key);
    torch::Tensor z1 = b_.project(v0), z2 = b_.project(v1);
    ObjectiveOutput out;
    out.loss = ssl::nt_xent(z1, z2, t_, comm_.get());
    out.metrics["pair_acc"] = ssl::pair_accuracy(z1, z2);
    return out;
  }

 private:
  Branch b_;
  std::shared_ptr<Communicator> comm_;
  double t_;
};

class Moco : public Objective {
 public:
  Moco(const Config& cfg, BuildContext& ctx) : comm_(ctx.comm()), t_(cfg.get_float("temperature")) {
    b_.build(cfg, ctx, false);
    b_.make_targets(cfg, ctx);
    queue_size_ = cfg.get_int("queue_size");
    if (queue_size_ > 0) {
      // The keys' size: the projector's output, else the encoder's embedding.
      int64_t dim = b_.encoder->embed_dim();
      if (b_.projector) {
        auto mlp = std::dynamic_pointer_cast<MlpHead>(b_.projector);
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
    auto [v0, v1] = two_views(batch, b_.key);
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
  Branch b_;
  std::shared_ptr<Communicator> comm_;
  double t_;
  int64_t queue_size_ = 0;
  torch::Tensor queue_, ptr_;
};

class Byol : public Objective {
 public:
  Byol(const Config& cfg, BuildContext& ctx) {
    b_.build(cfg, ctx, true);
    b_.make_targets(cfg, ctx);
  }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = two_views(batch, b_.key);
    torch::Tensor p1 = b_.predict(b_.project(v0)), p2 = b_.predict(b_.project(v1));
    torch::Tensor z1 = b_.target(v0), z2 = b_.target(v1);
    ObjectiveOutput out;
    out.loss = (ssl::byol_loss(p1, z2) + ssl::byol_loss(p2, z1)) / 2;
    out.metrics["pair_acc"] = ssl::pair_accuracy(p1, z2);
    return out;
  }

 private:
  Branch b_;
};

class SimSiam : public Objective {
 public:
  SimSiam(const Config& cfg, BuildContext& ctx) { b_.build(cfg, ctx, true); }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = two_views(batch, b_.key);
    torch::Tensor z1 = b_.project(v0), z2 = b_.project(v1);
    torch::Tensor p1 = b_.predict(z1), p2 = b_.predict(z2);
    ObjectiveOutput out;
    out.loss = (ssl::negative_cosine(p1, z2) + ssl::negative_cosine(p2, z1)) / 2;  // stop-gradient on z
    {
      torch::NoGradGuard g;
      // Collapse monitor: std of the normalised projections (1/sqrt(D) healthy, 0 collapsed).
      out.metrics["z_std"] = torch::nn::functional::normalize(z1, torch::nn::functional::NormalizeFuncOptions().dim(1))
                                 .std(0).mean().item<double>();
    }
    return out;
  }

 private:
  Branch b_;
};

class VicReg : public Objective {
 public:
  VicReg(const Config& cfg, BuildContext& ctx)
      : comm_(ctx.comm()), sim_(cfg.get_float("sim_coeff")), std_(cfg.get_float("std_coeff")), cov_(cfg.get_float("cov_coeff")) {
    b_.build(cfg, ctx, false);
  }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = two_views(batch, b_.key);
    ssl::VicRegTerms t = ssl::vicreg(b_.project(v0), b_.project(v1), sim_, std_, cov_, comm_.get());
    ObjectiveOutput out;
    out.loss = t.loss;
    out.metrics["invariance"] = t.invariance.item<double>();
    out.metrics["variance"] = t.variance.item<double>();
    out.metrics["covariance"] = t.covariance.item<double>();
    return out;
  }

 private:
  Branch b_;
  std::shared_ptr<Communicator> comm_;
  double sim_, std_, cov_;
};

class BarlowTwins : public Objective {
 public:
  BarlowTwins(const Config& cfg, BuildContext& ctx) : comm_(ctx.comm()), lambda_(cfg.get_float("lambda")) {
    b_.build(cfg, ctx, false);
  }
  ObjectiveOutput compute(const Batch& batch) override {
    auto [v0, v1] = two_views(batch, b_.key);
    ObjectiveOutput out;
    out.loss = ssl::barlow_twins(b_.project(v0), b_.project(v1), lambda_, comm_.get());
    return out;
  }

 private:
  Branch b_;
  std::shared_ptr<Communicator> comm_;
  double lambda_;
};

// CLIP between two encoders of a paired sample, each through its projector
// head to a shared size, with a learnable temperature.
class Clip : public Objective {
 public:
  Clip(const Config& cfg, BuildContext& ctx) : comm_(ctx.comm()), max_scale_(cfg.get_float("max_logit_scale")) {
    a_ = ctx.encoder(cfg.get_string("encoder_a"), cfg.locate("encoder_a"));
    b_ = ctx.encoder(cfg.get_string("encoder_b"), cfg.locate("encoder_b"));
    pa_ = ctx.head(cfg.get_string("projector_a"), cfg.locate("projector_a"));
    pb_ = ctx.head(cfg.get_string("projector_b"), cfg.locate("projector_b"));
    logit_scale_ = register_parameter("logit_scale", torch::full({}, std::log(1.0 / cfg.get_float("temperature"))));
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

// Cross-modal retrieval on held-out pairs: Recall@K in both directions of
// the cosine similarity between the two projected embeddings, next to chance.
class Retrieval : public Evaluator {
 public:
  explicit Retrieval(const Config& cfg) : cfg_(cfg) {}
  EvalResults evaluate(BuildContext& ctx) override {
    auto data = ctx.dataset(cfg_.get_string("split"), cfg_.locate("split"));
    auto ea = ctx.encoder(cfg_.get_string("encoder_a"), cfg_.locate("encoder_a"));
    auto eb = ctx.encoder(cfg_.get_string("encoder_b"), cfg_.locate("encoder_b"));
    auto pa = ctx.head(cfg_.get_string("projector_a"), cfg_.locate("projector_a"));
    auto pb = ctx.head(cfg_.get_string("projector_b"), cfg_.locate("projector_b"));
    for (torch::nn::Module* m : std::vector<torch::nn::Module*>{ea.get(), eb.get(), pa.get(), pb.get()}) m->eval();
    int64_t limit = cfg_.get_int("limit"), bs = cfg_.get_int("batch_size");
    // One pass over the pairs (each sample is read and decoded once): both
    // projections and, with match_labels, the label, side by side.
    const std::string match = cfg_.get_string("match_labels");
    int64_t da = 0, db = 0;
    torch::Tensor all = embed_dataset(
        *data, limit, bs, ctx.device(),
        [&](const Batch& b) {
          torch::Tensor a = pa->forward(ea->embed(b)), z = pb->forward(eb->embed(b));
          da = a.size(1), db = z.size(1);
          if (match.empty()) return torch::cat({a, z}, 1);
          SSLAB_CHECK(b.has(match), cfg_.locate("match_labels"), ": the ", cfg_.get_string("split"),
                      " samples have no '", match, "'");
          return torch::cat({a, z, b.at(match).reshape({b.size, -1}).to(a.device(), torch::kFloat32)}, 1);
        },
        nullptr);
    torch::Tensor za = all.slice(1, 0, da), zb = all.slice(1, da, da + db);
    EvalResults r;
    std::string name = cfg_.get_string("name");
    int64_t n = za.size(0);
    for (bool a2b : {true, false}) {
      auto rec = ssl::recall_at(a2b ? za : zb, a2b ? zb : za, cfg_.get_ints("k"));
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
      auto chance = ssl::label_chance_at(labels, cfg_.get_ints("k"));
      for (bool a2b : {true, false}) {
        auto rec = ssl::label_recall_at(a2b ? za : zb, a2b ? zb : za, labels, cfg_.get_ints("k"));
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
  Config cfg_;
};

}  // namespace

void register_paired_dataset(Registrar& r);  // paired.cpp

void register_builtin_components(Registries& reg) {
  Registrar r("sslab", "");
  register_paired_dataset(r);
  r.head("ssl.mlp", "MLP projector/predictor head: Linear -> [BatchNorm] -> ReLU ... -> Linear", mlp_head_schema(),
         make_mlp_head);
  {
    Schema s;
    branch_keys(s, false, false, 0);
    s.number("temperature", 0.2, "softmax temperature").greater_than(0);
    r.objective("ssl.infonce", "SimCLR NT-Xent between two views (negatives: every other view in the global batch)", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<InfoNce>(c, x); });
  }
  {
    Schema s;
    branch_keys(s, true, true, 0.99);
    s.number("temperature", 0.2, "softmax temperature").greater_than(0);
    s.integer("queue_size", int64_t{4096}, "MoCo v2 queue of negatives (0: MoCo v3, symmetric with in-batch negatives)")
        .min(0);
    r.objective("ssl.moco", "MoCo: query vs momentum-encoder key, negatives from a queue (v2) or the batch (v3)", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<Moco>(c, x); });
  }
  {
    Schema s;
    branch_keys(s, true, true, 0.996);
    r.objective("ssl.byol", "BYOL: online predictor regresses the EMA target's projection of the other view", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<Byol>(c, x); });
  }
  {
    Schema s;
    branch_keys(s, true, false, 0);
    r.objective("ssl.simsiam", "SimSiam: predictor vs stop-gradient projection of the other view", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<SimSiam>(c, x); });
  }
  {
    Schema s;
    branch_keys(s, false, false, 0);
    s.number("sim_coeff", 25.0, "invariance (MSE) weight").min(0);
    s.number("std_coeff", 25.0, "variance hinge weight").min(0);
    s.number("cov_coeff", 1.0, "covariance weight").min(0);
    r.objective("ssl.vicreg", "VICReg: invariance + variance + covariance of two views' expansions", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<VicReg>(c, x); });
  }
  {
    Schema s;
    branch_keys(s, false, false, 0);
    s.number("lambda", 0.0051, "weight of the off-diagonal (redundancy) term").min(0);
    r.objective("ssl.barlow_twins", "Barlow Twins: cross-correlation of two views towards the identity", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<BarlowTwins>(c, x); });
  }
  {
    Schema s;
    s.string("encoder_a", required, "first encoder (name under [encoders]), reading one part of a paired sample");
    s.string("encoder_b", required, "second encoder (name under [encoders]), reading the other part");
    s.string("projector_a", required, "head projecting encoder_a's embedding to the shared space");
    s.string("projector_b", required, "head projecting encoder_b's embedding to the shared space (same out_dim)");
    s.number("temperature", 0.07, "initial temperature (learnable)").greater_than(0);
    s.number("max_logit_scale", 100.0, "cap on 1 / temperature").greater_than(0);
    r.objective("ssl.clip", "CLIP: symmetric InfoNCE between two encoders of paired samples", s,
                [](const Config& c, BuildContext& x) { return std::make_shared<Clip>(c, x); });
  }
  {
    Schema s;
    s.string("encoder_a", required, "first encoder");
    s.string("encoder_b", required, "second encoder");
    s.string("projector_a", required, "projector head of encoder_a (as in the ssl.clip objective)");
    s.string("projector_b", required, "projector head of encoder_b");
    s.string("split", std::string("test"), "held-out split of paired samples");
    s.integer("limit", int64_t{1000}, "pairs used (0: all); chance of Recall@K is K / pairs").min(0);
    s.integers("k", std::vector<int64_t>{1, 5, 10}, "the K of Recall@K").min(1);
    s.integer("batch_size", int64_t{256}, "batch size for embedding").min(1);
    s.string("name", std::string("retrieval"), "name of the results in eval.json");
    s.string("match_labels", std::string(""),
             "also count a key with the query's value of this label (e.g. label.items) as found: "
             "label_recall@K beside label_chance@K");
    r.evaluator("ssl.retrieval", "cross-modal retrieval Recall@K in both directions on held-out pairs", s,
                [](const Config& c, BuildContext&) { return std::make_shared<Retrieval>(c); });
  }
  r.commit(reg);
}

}  // namespace sslab
