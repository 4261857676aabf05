// Clustering and self-distillation objectives of the ssl plugin: SwAV
// (ssl.swav; Caron et al. 2020, "Unsupervised Learning of Visual Features by
// Contrasting Cluster Assignments") and DINO (ssl.dino with its head
// ssl.dino_head; Caron et al. 2021, "Emerging Properties in Self-Supervised
// Vision Transformers"), on the SDK's two-view plumbing and losses
// (sslab::ssl::sinkhorn_knopp, swav_loss, dino_loss, dino_center).
#include "clustering.h"

#include <cmath>

#include <sslab/distributed.h>
#include <sslab/nn/mlp.h>
#include <sslab/settings.h>
#include <sslab/ssl.h>
#include <sslab/two_view.h>

namespace sslab::ssl_plugin {

namespace {

namespace F = torch::nn::functional;
using Predictor = TwoViewKeys::Predictor;

torch::Tensor unit(const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().dim(1)); }

// The width of what the branch's projections will be: the projector's output
// for an input of the encoder's width (run once on zeros in eval mode, so no
// batch statistics move), else the encoder's embedding.
int64_t projection_width(const TwoViewBranch& b) {
  const int64_t in = b.encoder()->embed_dim();
  if (!b.projector()) return in;
  torch::NoGradGuard no_grad;
  const bool was_training = b.projector()->is_training();
  b.projector()->eval();
  const int64_t out = b.projector()->forward(torch::zeros({2, in})).size(1);
  b.projector()->train(was_training);
  return out;
}

// Every view of the branch's key: 0 and 1 (the global crops; an error saying
// how to add them when absent), then 2, 3, ... as long as the batch has them
// (multi-crop: more, usually smaller, crops from [views] and per-view
// transforms).
std::vector<Batch> all_views(const TwoViewBranch& b, const Batch& batch) {
  auto [v0, v1] = b.views(batch);
  std::vector<Batch> out{std::move(v0), std::move(v1)};
  for (int v = 2; batch.has(b.key() + "@" + std::to_string(v)); ++v) out.push_back(select_view(batch, b.key(), v));
  return out;
}

// ---------------------------------------------------------------- DINO head

struct DinoHeadOptions {
  std::string encoder;
  int64_t in_dim = 0;
  std::vector<int64_t> hidden{512, 512};
  int64_t bottleneck = 128;
  int64_t out_dim = 1024;
  bool norm_last_layer = true;
  bool batch_norm = false;
};

// MLP (GELU, no norm by default) -> bottleneck -> L2-normalised -> a linear
// layer without bias to out_dim whose rows are unit vectors when
// norm_last_layer (weight normalisation with the gain fixed at 1, DINO's
// default), a plain learned matrix otherwise.
class DinoHead : public Head {
 public:
  DinoHead(const nn::MlpOptions& mlp, int64_t out_dim, bool norm_last_layer)
      : mlp_(register_module("mlp", nn::Mlp(mlp))), norm_last_(norm_last_layer) {
    const int64_t b = mlp.dims().back();
    last_ = register_parameter("last_layer", torch::empty({out_dim, b}));
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(last_, 0.0, 0.02);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor h = unit(mlp_->forward(x));
    return torch::mm(h, (norm_last_ ? unit(last_) : last_).t());
  }

 private:
  nn::Mlp mlp_;
  torch::Tensor last_;
  bool norm_last_;
};

// ---------------------------------------------------------------- SwAV

struct SwavOptions {
  int64_t prototypes = 300;
  double temperature = 0.1;
  double epsilon = 0.05;
  int64_t sinkhorn_iterations = 3;
  int64_t freeze_prototypes_steps = 0;
  int64_t queue_size = 0;
};

class Swav : public Objective {
 public:
  static constexpr TwoViewKeys kKeys{};
  Swav(const Config& cfg, BuildContext& ctx, const SwavOptions& o) : b_(cfg, ctx, kKeys), comm_(ctx.comm()), o_(o) {
    const int64_t d = projection_width(b_);
    // Prototypes: unit rows, as the reference normalises them before each step.
    prototypes_ = register_parameter("prototypes", unit(torch::randn({o.prototypes, d})));
    step_ = register_buffer("step", torch::zeros({1}, torch::kLong));
    if (o.queue_size > 0) {
      queue_ = register_buffer("queue", torch::zeros({o.queue_size, d}));
      queue_filled_ = register_buffer("queue_filled", torch::zeros({1}, torch::kLong));
    }
  }

  ObjectiveOutput compute(const Batch& batch) override {
    std::vector<Batch> views = all_views(b_, batch);
    if (is_training()) {
      torch::NoGradGuard no_grad;
      prototypes_.copy_(unit(prototypes_));
    }
    const bool frozen = is_training() && step_.item<int64_t>() < o_.freeze_prototypes_steps;
    torch::Tensor w = frozen ? prototypes_.detach() : prototypes_;
    // Scores of every view; codes of the two global views only (the paper's
    // crops_for_assign), each predicted from every other view.
    std::vector<torch::Tensor> z, scores;
    for (const Batch& v : views) {
      z.push_back(unit(b_.project(v)));
      scores.push_back(torch::mm(z.back(), w.t()));
    }
    std::vector<torch::Tensor> codes;
    {
      torch::NoGradGuard no_grad;
      const bool use_queue = queue_.defined() && queue_filled_.item<int64_t>() >= o_.queue_size;
      for (const torch::Tensor& s : {scores[0], scores[1]}) {
        torch::Tensor assigned = s.detach();
        // With a full queue the codes are computed over the batch and the
        // queue's past projections together (the paper's small-batch remedy).
        if (use_queue) assigned = torch::cat({assigned, torch::mm(queue_.to(s.dtype()), w.detach().t())});
        codes.push_back(
            ssl::sinkhorn_knopp(assigned, o_.epsilon, o_.sinkhorn_iterations, comm_.get()).narrow(0, 0, s.size(0)));
      }
    }
    ObjectiveOutput out;
    out.loss = ssl::swav_loss(scores, codes, o_.temperature);
    torch::NoGradGuard no_grad;
    if (is_training()) {
      step_ += 1;
      if (queue_.defined()) enqueue(torch::cat({z[0], z[1]}).detach());
    }
    // Collapse monitor: the share of prototypes that are some sample's best.
    torch::Tensor best = torch::cat({codes[0], codes[1]}).argmax(1);
    out.metrics["prototypes_used"] =
        torch::bincount(best, {}, o_.prototypes).gt(0).sum().item<double>() / static_cast<double>(o_.prototypes);
    return out;
  }

 private:
  void enqueue(const torch::Tensor& z) {
    const int64_t n = std::min<int64_t>(z.size(0), o_.queue_size);
    // Newest first, as the reference: shift the old rows down, put z on top.
    if (o_.queue_size > n) queue_.narrow(0, n, o_.queue_size - n).copy_(queue_.narrow(0, 0, o_.queue_size - n).clone());
    queue_.narrow(0, 0, n).copy_(z.narrow(0, 0, n).to(queue_.dtype()));
    queue_filled_.fill_(std::min<int64_t>(o_.queue_size, queue_filled_.item<int64_t>() + n));
  }

  TwoViewBranch b_;
  std::shared_ptr<Communicator> comm_;
  SwavOptions o_;
  torch::Tensor prototypes_, step_, queue_, queue_filled_;
};

// ---------------------------------------------------------------- DINO

struct DinoOptions {
  double student_temp = 0.1;
  double teacher_temp = 0.04;
  double warmup_teacher_temp = 0.04;
  int64_t warmup_teacher_temp_steps = 0;
  double center_momentum = 0.9;
};

class Dino : public Objective {
 public:
  static constexpr TwoViewKeys kKeys{Predictor::None, true, 0.996};
  Dino(const Config& cfg, BuildContext& ctx, const DinoOptions& o) : b_(cfg, ctx, kKeys), comm_(ctx.comm()), o_(o) {
    center_ = register_buffer("center", torch::zeros({1, projection_width(b_)}));
    step_ = register_buffer("step", torch::zeros({1}, torch::kLong));
  }

  // Linear from warmup_teacher_temp to teacher_temp over the warm-up steps, then constant (the reference's schedule).
  double teacher_temp(int64_t step) const {
    if (step >= o_.warmup_teacher_temp_steps) return o_.teacher_temp;
    const double f = static_cast<double>(step) / static_cast<double>(o_.warmup_teacher_temp_steps);
    return o_.warmup_teacher_temp + f * (o_.teacher_temp - o_.warmup_teacher_temp);
  }

  ObjectiveOutput compute(const Batch& batch) override {
    // The student sees every view, the teacher the two global ones (multi-crop).
    std::vector<Batch> views = all_views(b_, batch);
    std::vector<torch::Tensor> student;
    for (const Batch& v : views) student.push_back(b_.project(v));
    torch::Tensor t0 = b_.target(views[0]), t1 = b_.target(views[1]);
    const double tt = teacher_temp(step_.item<int64_t>());
    ObjectiveOutput out;
    out.loss = ssl::dino_loss(student, {t0, t1}, center_, o_.student_temp, tt);
    out.metrics["views"] = static_cast<double>(views.size());
    torch::NoGradGuard no_grad;
    // Sharpness of the teacher: the entropy of its centred, sharpened
    // distribution (0: one-hot; log K: uniform, collapse by flattening).
    torch::Tensor p = torch::softmax((t0 - center_) / tt, 1);
    out.metrics["teacher_entropy"] = -(p * torch::log(p.clamp_min(1e-12))).sum(1).mean().item<double>();
    out.metrics["teacher_temp"] = tt;
    if (is_training()) {
      center_.copy_(ssl::dino_center(center_, {t0, t1}, o_.center_momentum, comm_.get()));
      step_ += 1;
    }
    return out;
  }

 private:
  TwoViewBranch b_;
  std::shared_ptr<Communicator> comm_;
  DinoOptions o_;
  torch::Tensor center_, step_;
};

}  // namespace

void register_clustering(Registrar& r) {
  using H = DinoHeadOptions;
  Settings<H> head;
  head.add("encoder", &H::encoder, "encoder whose embedding this head reads (sets the input size)");
  head.add("in_dim", &H::in_dim, "input size when no encoder is named").min(0);
  head.add("hidden", &H::hidden, "hidden layer sizes of the MLP (GELU)").min(1);
  head.add("bottleneck", &H::bottleneck, "the MLP's output, L2-normalised before the last layer").min(1);
  head.add("out_dim", &H::out_dim, "outputs of the last layer (DINO's K)").min(2);
  head.add("norm_last_layer", &H::norm_last_layer,
           "unit rows in the last layer (weight normalisation with the gain fixed at 1)");
  head.add("batch_norm", &H::batch_norm, "batch norm after the hidden layers (DINO's default: none)");
  r.head("ssl.dino_head", "DINO's projection head: MLP -> L2-normalised bottleneck -> weight-normalised linear to K",
         head.schema(), [head](const Config& c, BuildContext& ctx) {
           H h = head.read(c);
           std::vector<int64_t> dims{head_input_dim(h.encoder, h.in_dim, c, ctx)};
           dims.insert(dims.end(), h.hidden.begin(), h.hidden.end());
           dims.push_back(h.bottleneck);
           nn::MlpOptions o(dims);
           o.activation("gelu").norm(h.batch_norm ? "batch" : "none").sync(ctx.comm());
           return std::make_shared<DinoHead>(o, h.out_dim, h.norm_last_layer);
         });

  using S = SwavOptions;
  Settings<S> swav;
  swav.add("prototypes", &S::prototypes, "number of prototypes (K)").min(2);
  swav.add("temperature", &S::temperature, "softmax temperature of the swapped prediction").greater_than(0);
  swav.add("epsilon", &S::epsilon, "Sinkhorn-Knopp entropy regularisation (smaller: sharper codes)").greater_than(0);
  swav.add("sinkhorn_iterations", &S::sinkhorn_iterations, "Sinkhorn-Knopp iterations").min(1);
  swav.add("freeze_prototypes_steps", &S::freeze_prototypes_steps,
           "steps at the start in which the prototypes are not trained (the paper: the first epoch)")
      .min(0);
  swav.add("queue_size", &S::queue_size,
           "past projections (of this rank) added to the batch when computing codes, once the queue is full "
           "(0: none)")
      .min(0);
  r.objective("ssl.swav",
              "SwAV: predict one view's Sinkhorn-Knopp cluster codes from the other view's prototype scores",
              two_view_schema(Swav::kKeys).merge(swav.schema()),
              [swav](const Config& c, BuildContext& x) { return std::make_shared<Swav>(c, x, swav.read(c)); });

  using D = DinoOptions;
  Settings<D> dino;
  dino.add("student_temp", &D::student_temp, "student softmax temperature").greater_than(0);
  dino.add("teacher_temp", &D::teacher_temp, "teacher softmax temperature after the warm-up (sharpening)")
      .greater_than(0);
  dino.add("warmup_teacher_temp", &D::warmup_teacher_temp, "teacher temperature at step 0").greater_than(0);
  dino.add("warmup_teacher_temp_steps", &D::warmup_teacher_temp_steps,
           "steps of the linear warm-up from warmup_teacher_temp to teacher_temp (0: none)")
      .min(0);
  dino.add("center_momentum", &D::center_momentum, "momentum of the teacher outputs' centre").min(0).max(1);
  r.objective("ssl.dino",
              "DINO: the student matches the EMA teacher's centred, sharpened output distribution on the other view",
              two_view_schema(Dino::kKeys).merge(dino.schema()),
              [dino](const Config& c, BuildContext& x) { return std::make_shared<Dino>(c, x, dino.read(c)); });
}

}  // namespace sslab::ssl_plugin
