// Evaluation helpers: what every evaluator (the host's probes, a plugin's
// task metric) is built on, so no plugin re-implements a probe.
//
//  - for_each_batch / embed_features: the one batching loop (limit ->
//    collate -> device) and named features of a dataset in one pass;
//  - linear_probe_accuracy, knn_accuracy, multilabel_probe_scores,
//    mean_average_precision, recall_at_m, majority_accuracy: the classifiers
//    and metrics on frozen features;
//  - ProbeSettings with add_probe_settings(): the probe keys every probe
//    evaluator shares (limits, batch size, probe epochs/lr/weight decay,
//    random-encoder baseline), declared once;
//  - resolve_encoder / random_encoder: which encoder an evaluator reads and
//    its randomly initialised twin (the random-encoder baseline).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sslab/components.h"
#include "sslab/settings.h"

namespace sslab {

// Calls fn on the first `limit` samples (0: all) of `data`, collated in
// batches of `batch_size`, in order.
SSLAB_API void for_each_batch(const Dataset& data, int64_t limit, int64_t batch_size,
                              const std::function<void(const Batch&)>& fn);

// One feature of a sample batch: an embedding, a raw-input baseline...
struct FeatureSpec {
  std::string name;
  std::function<torch::Tensor(const Batch&)> fn;  // [B, D] (any dtype/device)
  bool on_device = true;  // fn gets the batch on the evaluation device (false: on the CPU)
};

// Features [N, D] (float32, CPU) by name and label tensors [N, ...] by key.
struct SSLAB_API Features {
  std::map<std::string, torch::Tensor> x;
  std::map<std::string, torch::Tensor> labels;
  const torch::Tensor& at(const std::string& name) const;     // a feature, or a clear internal error
  const torch::Tensor& label(const std::string& key) const;   // a label tensor
  int64_t size() const;
};

// Computes every feature of `features` and collects `label_keys` over the
// first `limit` samples of `data` in one pass, without gradients. A sample
// without a label key is a UserError naming `who` and the key.
SSLAB_API Features embed_features(const Dataset& data, int64_t limit, int64_t batch_size, const torch::Device& device,
                                  const std::vector<FeatureSpec>& features, const std::vector<std::string>& label_keys,
                                  const std::string& who);

// Embeddings [N, D] (float32, CPU) of the first `limit` samples of a dataset
// (0: all) computed by `fn` in eval mode without gradients; labels [N] int64
// are written to *labels when the samples have "label".
SSLAB_API torch::Tensor embed_dataset(const Dataset& data, int64_t limit, int64_t batch_size,
                                      const torch::Device& device, const std::function<torch::Tensor(const Batch&)>& fn,
                                      torch::Tensor* labels);

struct ProbeOptions {
  int64_t epochs = 30;
  double lr = 1e-2;
  double weight_decay = 1e-4;
  int64_t batch_size = 1024;
  uint64_t seed = 0;
};

// Multinomial logistic regression on standardised features (statistics from
// the training set), trained with AdamW (cosine learning rate, at least 500
// updates); returns test accuracy.
SSLAB_API double linear_probe_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                       const torch::Tensor& test_x, const torch::Tensor& test_y, int64_t classes,
                                       const ProbeOptions& options);

// Cosine-similarity kNN with majority vote among the k nearest training
// embeddings (ties broken by summed similarity); returns test accuracy.
SSLAB_API double knn_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                              const torch::Tensor& test_y, int64_t classes, int64_t k);

// Accuracy on test of always answering the most frequent training class.
SSLAB_API double majority_accuracy(const torch::Tensor& train_y, const torch::Tensor& test_y, int64_t classes);

// Multi-label probe: one linear layer with a sigmoid per class (BCE) on
// standardised features, trained as the linear probe; returns test scores
// [N, K] (logits). train_y is multi-hot [N, K].
SSLAB_API torch::Tensor multilabel_probe_scores(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                                const torch::Tensor& test_x, const ProbeOptions& options);
// Mean over classes (present in the test set) of average precision.
SSLAB_API double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets);
// Share of true labels among each sample's top-m scores (m = its label count).
SSLAB_API double recall_at_m(const torch::Tensor& scores, const torch::Tensor& targets);

// A labelled subset for label-efficiency protocols: `train` and `val`
// sample indices (into the tensor the subset was drawn from), each sorted.
struct LabelSubset {
  std::vector<int64_t> train, val;
};

// A seeded, stratified subset of `fraction` of the samples: each stratum (a
// class of single-label [N] labels; a set of classes of multi-hot [N, K]
// labels) gives round(fraction * its size) samples, at least one; of those,
// floor(val_fraction * picked) go to `val`, at least one when the stratum
// gave two or more and val_fraction > 0. Depends only on (labels, fraction,
// val_fraction, seed). fraction in (0, 1], val_fraction in [0, 1).
SSLAB_API LabelSubset stratified_subset(const torch::Tensor& labels, double fraction, double val_fraction,
                                        uint64_t seed);

// Few-shot classification on frozen features: episodes of `ways` classes
// (0: every class with `shots` training samples), `shots` support samples per
// class drawn from train_x and `queries` query samples per class drawn from
// test_x, each episode seeded from (seed, episode).
struct FewShotOptions {
  int64_t shots = 5;
  int64_t ways = 0;
  int64_t queries = 15;
  int64_t episodes = 200;
  int64_t logistic_steps = 100;  // full-batch AdamW steps of the episode's logistic regression
  double logistic_lr = 0.05;
  double logistic_weight_decay = 1e-3;
  uint64_t seed = 0;
};

// Mean accuracy over episodes and the half-width of its 95% interval
// (1.96 standard errors), for the nearest-prototype classifier (cosine to the
// mean of L2-normalised support features) and for logistic regression on
// the support set (features standardised with train_x's statistics).
struct FewShotResult {
  double prototype = 0, prototype_ci95 = 0;
  double logistic = 0, logistic_ci95 = 0;
  int64_t episodes = 0, ways = 0;
};
SSLAB_API FewShotResult few_shot_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                          const torch::Tensor& test_x, const torch::Tensor& test_y,
                                          const FewShotOptions& options);

// Puts modules in eval mode and restores their previous mode on scope exit.
class SSLAB_API EvalMode {
 public:
  explicit EvalMode(std::vector<torch::nn::Module*> modules);
  ~EvalMode();
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  std::vector<std::pair<torch::nn::Module*, bool>> saved_;
};

// The settings every probe evaluator shares.
struct ProbeSettings {
  int64_t train_limit = 0;      // training samples used (0: all)
  int64_t test_limit = 0;       // test samples used (0: all)
  int64_t batch_size = 64;      // samples per embedding batch
  bool random_encoder = true;   // probe a randomly initialised twin of the encoder too
  bool knn = true;              // a kNN classifier beside the linear probe
  int64_t knn_k = 20;           // its neighbours
  ProbeOptions probe;           // epochs, lr, weight_decay (the seed is the run's)
};

// Which of the shared keys an evaluator declares (add_probe_settings).
enum ProbeKeys : unsigned {
  kProbeKeysBase = 0,             // limits, batch size, probe epochs/lr/weight decay
  kProbeKeysRandomEncoder = 1,    // + random_encoder (an evaluator of an encoder)
  kProbeKeysKnn = 2,              // + knn, knn_k
  kProbeKeysAll = 3,
};

// Declares the shared probe keys (train_limit, test_limit, batch_size,
// probe_epochs, probe_lr, probe_weight_decay, and as `keys` says
// random_encoder, knn, knn_k) on `s`, stored in the ProbeSettings that
// `access(options)` returns; the defaults are that ProbeSettings' values in
// the prototype.
template <typename Options, typename Access>
void add_probe_settings(Settings<Options>& s, Access access, unsigned keys = kProbeKeysRandomEncoder) {
  s.add("train_limit", [access](Options& o) -> int64_t& { return access(o).train_limit; },
        "use at most this many training samples (0: all)")
      .min(0);
  s.add("test_limit", [access](Options& o) -> int64_t& { return access(o).test_limit; },
        "use at most this many test samples (0: all)")
      .min(0);
  s.add("batch_size", [access](Options& o) -> int64_t& { return access(o).batch_size; },
        "samples per embedding batch")
      .min(1);
  if (keys & kProbeKeysRandomEncoder)
    s.add("random_encoder", [access](Options& o) -> bool& { return access(o).random_encoder; },
          "also probe a randomly initialised encoder of the same recipe (the random-encoder baseline)");
  if (keys & kProbeKeysKnn) {
    s.add("knn", [access](Options& o) -> bool& { return access(o).knn; }, "cosine kNN classifier");
    s.add("knn_k", [access](Options& o) -> int64_t& { return access(o).knn_k; }, "neighbours for kNN").min(1);
  }
  s.add("probe_epochs", [access](Options& o) -> int64_t& { return access(o).probe.epochs; },
        "linear probe epochs (at least 500 updates in all)")
      .min(1);
  s.add("probe_lr", [access](Options& o) -> double& { return access(o).probe.lr; }, "linear probe learning rate")
      .greater_than(0);
  s.add("probe_weight_decay", [access](Options& o) -> double& { return access(o).probe.weight_decay; },
        "linear probe weight decay")
      .min(0);
}

// An encoder under evaluation: the recipe's encoder in eval mode (restored
// afterwards) and, when asked, its random-encoder twin, with the features an
// evaluator embeds for them: "encoder" and "random".
class SSLAB_API ProbeTarget {
 public:
  // `name` empty: the recipe's only encoder (resolve_encoder).
  ProbeTarget(const BuildContext& ctx, const std::string& name, bool with_random, const std::string& who);
  // With the twin when settings.random_encoder is set.
  ProbeTarget(const BuildContext& ctx, const std::string& name, const ProbeSettings& settings, const std::string& who)
      : ProbeTarget(ctx, name, settings.random_encoder, who) {}
  // The batch key the encoder reads.
  const std::string& input() const { return encoder_->input(); }
  const std::string& name() const { return name_; }
  Encoder& encoder() const { return *encoder_; }
  bool has_random() const { return random_ != nullptr; }
  // {"encoder", the embedding} and, with the twin, {"random", its embedding}.
  std::vector<FeatureSpec> features() const;

 private:
  std::string name_;
  std::shared_ptr<Encoder> encoder_, random_;
  std::unique_ptr<EvalMode> mode_;
};

// The features and labels of the "train" and "test" splits (their first
// settings.train_limit / test_limit samples, in batches of settings.batch_size).
struct SSLAB_API SplitFeatures {
  Features train, test;
};
SSLAB_API SplitFeatures embed_splits(const BuildContext& ctx, const ProbeSettings& settings,
                                     const std::vector<FeatureSpec>& features,
                                     const std::vector<std::string>& label_keys, const std::string& who);

// The encoder an evaluator reads: `name`, or the recipe's only encoder when
// `name` is empty (a UserError naming `who` when there are several).
SSLAB_API std::string resolve_encoder(const BuildContext& ctx, const std::string& name, const std::string& who);

// The random-encoder baseline of a recipe encoder: a fresh copy seeded from
// the run's seed (the same weights for every evaluator of a run), in eval mode.
SSLAB_API std::shared_ptr<Encoder> random_encoder(const BuildContext& ctx, const std::string& name);

}  // namespace sslab
