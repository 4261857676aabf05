// The template plugin: one small, working component of each kind.
//
// Copy this folder, rename the plugin ("template" below and in
// CMakeLists.txt) and replace the components with your own. The rules:
//  - include only sslab/... headers and LibTorch;
//  - register everything inside the register function (no static initialisers);
//  - name components "<plugin>.<thing>";
//  - declare every recipe key a component reads in its Schema: the platform
//    validates recipes against it and reports file:line:col for bad values;
//  - throw sslab::UserError (SSLAB_CHECK) for a user's mistake; the SSLAB_PLUGIN
//    trampoline keeps exceptions from crossing the C entry point.
#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/two_view.h>

namespace {

using sslab::Batch;
using sslab::BuildContext;
using sslab::Config;
using sslab::Sample;
using sslab::Schema;

// ---- dataset: Gaussian blobs, one class per blob, key "vector" [dim] + "label"
class Blobs : public sslab::Dataset {
 public:
  Blobs(int64_t size, int64_t dim, int64_t classes, double noise, uint64_t seed)
      : size_(size), classes_(classes), noise_(noise), seed_(seed) {
    torch::manual_seed(seed);
    centers_ = torch::randn({classes, dim});
  }
  int64_t size() const override { return size_; }
  int64_t num_classes() const override { return classes_; }
  Sample get(int64_t index) const override {
    // Deterministic per index: the generator is seeded from (seed, index).
    auto gen = at::detail::createCPUGenerator(seed_ * 1000003u + static_cast<uint64_t>(index));
    int64_t label = index % classes_;
    torch::Tensor x = centers_[label] + noise_ * torch::randn(centers_.sizes().slice(1), gen);
    return {{"vector", x}, {"label", torch::tensor(label)}};
  }

 private:
  int64_t size_, classes_;
  double noise_;
  uint64_t seed_;
  torch::Tensor centers_;
};

// ---- transform: additive Gaussian noise
class Noise : public sslab::Transform {
 public:
  explicit Noise(double std) : std_(std) {}
  torch::Tensor apply(const torch::Tensor& x, sslab::Rng& rng) const override {
    auto gen = at::detail::createCPUGenerator(rng());
    return x + std_ * torch::randn(x.sizes(), gen);
  }

 private:
  double std_;
};

// ---- tokenizer: bytes as tokens, with [PAD]=256 and [MASK]=257
class Bytes : public sslab::Tokenizer {
 public:
  std::vector<int64_t> encode(const std::string& text) const override {
    return std::vector<int64_t>(text.begin(), text.end());
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string out;
    for (int64_t id : ids)
      if (id >= 0 && id < 256) out += static_cast<char>(id);
    return out;
  }
  int64_t vocab_size() const override { return 258; }
  int64_t special_id(const std::string& token) const override {
    return token == "[PAD]" ? 256 : token == "[MASK]" ? 257 : -1;
  }
};

// ---- encoder: a two-layer MLP on "vector"
class Mlp : public sslab::Encoder {
 public:
  Mlp(int64_t in, int64_t hidden, int64_t out) : out_(out) {
    fc1_ = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2_ = register_module("fc2", torch::nn::Linear(hidden, out));
  }
  torch::Tensor embed(const Batch& batch) override {
    return fc2_(torch::relu(fc1_(batch.at(input()))));
  }
  int64_t embed_dim() const override { return out_; }

 private:
  int64_t out_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

// ---- head: one linear layer
class LinearHead : public sslab::Head {
 public:
  LinearHead(int64_t in, int64_t out) { fc_ = register_module("fc", torch::nn::Linear(in, out)); }
  torch::Tensor forward(const torch::Tensor& x) override { return fc_(x); }

 private:
  torch::nn::Linear fc_{nullptr};
};

// ---- objective: reconstruct the input from the embedding (an autoencoder)
class Reconstruct : public sslab::Objective {
 public:
  Reconstruct(std::shared_ptr<sslab::Encoder> encoder, int64_t input_dim) : encoder_(std::move(encoder)) {
    decoder_ = register_module("decoder", torch::nn::Linear(encoder_->embed_dim(), input_dim));
  }
  sslab::ObjectiveOutput compute(const Batch& batch) override {
    torch::Tensor x = batch.at(encoder_->input());
    torch::Tensor loss = torch::mse_loss(decoder_(encoder_->embed(batch)), x);
    return {loss, {{"mse", loss.item<double>()}}};
  }

 private:
  std::shared_ptr<sslab::Encoder> encoder_;  // owned by the trainer, not registered here
  torch::nn::Linear decoder_{nullptr};
};

// ---- two-view objective: pull the projections of two views of each sample
// together (negative cosine). The SDK's TwoViewObjective reads the shared
// keys (encoder, input, projector), takes the views "<input>@0" and
// "<input>@1" made by [views], projects both and hands them to loss().
// Alone it can collapse; real ones add negatives or a variance term.
class CosineViews : public sslab::TwoViewObjective {
 public:
  using TwoViewObjective::TwoViewObjective;
  sslab::ObjectiveOutput loss(const torch::Tensor& z0, const torch::Tensor& z1) override {
    torch::Tensor cosine = torch::cosine_similarity(z0, z1, 1).mean();
    return {-cosine, {{"cosine", cosine.item<double>()}}};
  }
};

// ---- evaluator: mean embedding norm of the test split
class EmbeddingNorm : public sslab::Evaluator {
 public:
  explicit EmbeddingNorm(std::string encoder) : encoder_(std::move(encoder)) {}
  sslab::EvalResults evaluate(BuildContext& ctx) override {
    auto enc = ctx.encoder(encoder_);
    auto data = ctx.dataset("test");
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> xs;
    for (int64_t i = 0; i < std::min<int64_t>(data->size(), 256); ++i) xs.push_back(data->get(i).at(enc->input()));
    Batch b;
    b.tensors[enc->input()] = torch::stack(xs);
    b.size = static_cast<int64_t>(xs.size());
    return {{"template.embedding_norm", {{"mean", enc->embed(b).norm(2, 1).mean().item<double>()}}}};
  }

 private:
  std::string encoder_;
};

void register_components(sslab::Registrar& r) {
  Schema blobs;
  blobs.integer("size", int64_t{1000}, "number of samples").min(1);
  blobs.integer("dim", int64_t{16}, "vector dimension").min(1);
  blobs.integer("classes", int64_t{4}, "number of blobs (classes)").min(2);
  blobs.number("noise", 0.5, "standard deviation around each centre").min(0);
  blobs.integer("seed", int64_t{0}, "seed of the centres and samples").min(0);
  r.dataset("template.blobs", "Gaussian blobs with class labels (toy)", blobs, [](const Config& c, BuildContext&) {
    return std::make_shared<Blobs>(c.get_int("size"), c.get_int("dim"), c.get_int("classes"), c.get_float("noise"),
                                   static_cast<uint64_t>(c.get_int("seed")));
  });

  Schema noise;
  noise.number("std", 0.1, "noise standard deviation").min(0);
  r.transform("template.noise", "adds Gaussian noise (toy augmentation)", noise,
              [](const Config& c, BuildContext&) { return std::make_shared<Noise>(c.get_float("std")); });

  r.tokenizer("template.bytes", "UTF-8 bytes as tokens (toy)", Schema{},
              [](const Config&, BuildContext&) { return std::make_shared<Bytes>(); });

  Schema mlp;
  mlp.integer("in_dim", int64_t{16}, "input dimension").min(1);
  mlp.integer("hidden", int64_t{64}, "hidden width").min(1);
  mlp.integer("dim", int64_t{8}, "embedding dimension").min(1);
  r.encoder("template.mlp", "two-layer MLP on 'vector' (toy)", mlp, [](const Config& c, BuildContext&) {
    auto enc = std::make_shared<Mlp>(c.get_int("in_dim"), c.get_int("hidden"), c.get_int("dim"));
    enc->set_input(c.get_string("input").empty() ? "vector" : c.get_string("input"));
    return enc;
  });

  Schema head;
  head.integer("in_dim", int64_t{8}, "input dimension").min(1);
  head.integer("out_dim", int64_t{8}, "output dimension").min(1);
  r.head("template.linear", "one linear layer (toy)", head, [](const Config& c, BuildContext&) {
    return std::make_shared<LinearHead>(c.get_int("in_dim"), c.get_int("out_dim"));
  });

  Schema rec;
  rec.string("encoder", std::string("main"), "encoder whose input is reconstructed");
  rec.integer("input_dim", int64_t{16}, "dimension of the reconstructed input").min(1);
  r.objective("template.reconstruct", "autoencoder MSE: decode the embedding back to the input (toy)", rec,
              [](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                return std::make_shared<Reconstruct>(enc, c.get_int("input_dim"));
              });

  r.objective("template.cosine_views", "negative cosine between the projections of two views (toy)",
              sslab::two_view_schema(),
              [](const Config& c, BuildContext& ctx) { return std::make_shared<CosineViews>(c, ctx); });

  Schema norm;
  norm.string("encoder", std::string("main"), "encoder to measure");
  r.evaluator("template.embedding_norm", "mean L2 norm of test embeddings (toy)", norm,
              [](const Config& c, BuildContext&) { return std::make_shared<EmbeddingNorm>(c.get_string("encoder")); });
}

}  // namespace

SSLAB_PLUGIN("template", "0.1.0", "Template plugin: one toy component of each kind; copy it to start a plugin",
             register_components)
