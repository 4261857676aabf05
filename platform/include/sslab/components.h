// The interfaces plugins implement: datasets, transforms, tokenizers,
// encoders, heads, objectives and evaluators, and the BuildContext their
// factories receive.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sslab/error.h"
#include "sslab/recipe.h"
#include "sslab/registry.h"

namespace sslab {

class Communicator;  // sslab/distributed.h

// Named tensors: one sample, or a collated batch. Keys are namespaced:
// "image" [C,H,W], "text.ids" [T], "audio.wave" [S], "label" [] ...
// A batch holds the same keys with a leading batch dimension; variable-length
// keys are padded and get "<key>.length" [B] and "<key>.mask" companions.
using TensorMap = std::map<std::string, torch::Tensor>;
using Sample = TensorMap;

struct SSLAB_API Batch {
  TensorMap tensors;
  int64_t size = 0;

  bool has(const std::string& key) const { return tensors.count(key) != 0; }
  // The tensor, or a UserError listing the keys the batch has.
  const torch::Tensor& at(const std::string& key) const;
  Batch to(const torch::Device& device, bool non_blocking = false) const;
};

// The batch as seen by an encoder of `key`: view `view` ("<key>@<view>",
// with its .length/.mask companions) in place of `key`. The loader makes
// views from the recipe's [views] table. UserError when the view is absent.
SSLAB_API Batch select_view(const Batch& batch, const std::string& key, int view);

// Stacks samples into a batch; tensors whose first dimension differs are
// padded with zeros and get "<key>.length" [B] and "<key>.mask" [B,T] (true
// = real) companions. Throws UserError for other shape mismatches.
SSLAB_API Batch collate(const std::vector<Sample>& samples);

// A seed mixed from several numbers (splitmix64): per-sample randomness that
// depends only on (seed, index), whatever thread draws it.
SSLAB_API uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

using Rng = std::mt19937_64;

// A finite, indexable collection of samples. get() must be thread-safe and
// deterministic for a given index; a bad file throws DataError.
class SSLAB_API Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
  // Number of classes of the "label" key, 0 when unlabelled.
  virtual int64_t num_classes() const { return 0; }
};

// A per-sample random transform of one tensor (augmentation, features).
class SSLAB_API Transform {
 public:
  virtual ~Transform() = default;
  virtual torch::Tensor apply(const torch::Tensor& input, Rng& rng) const = 0;
};

// Text <-> token ids.
class SSLAB_API Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  // Id of a special token ("[PAD]", "[MASK]", ...), -1 if absent.
  virtual int64_t special_id(const std::string& token) const = 0;
};

// Maps one batch key (its input) to a pooled embedding [B, embed_dim].
// Plugins add richer methods (e.g. token outputs, masking) that their own
// objectives use through dynamic_pointer_cast.
class SSLAB_API Encoder : public torch::nn::Module {
 public:
  virtual torch::Tensor embed(const Batch& batch) = 0;
  virtual int64_t embed_dim() const = 0;
  // The batch key this encoder reads ("image", "text.ids", ...).
  const std::string& input() const { return input_; }
  void set_input(std::string key) { input_ = std::move(key); }

 private:
  std::string input_;
};

// A small network on embeddings (projector, predictor, classifier).
class SSLAB_API Head : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

struct ObjectiveOutput {
  torch::Tensor loss;                     // scalar, differentiable
  std::map<std::string, double> metrics;  // logged as "<objective>/<metric>"
};

// A pretext loss on a batch, using encoders/heads from the BuildContext.
// Its own parameters (decoders, predictors) are trained with the model.
class SSLAB_API Objective : public torch::nn::Module {
 public:
  virtual ObjectiveOutput compute(const Batch& batch) = 0;
};

// What an objective can show rather than tell (MAE reconstructions beside
// their masked inputs, predicted video frames beside the true ones): an
// objective that also derives from Illustrator is asked for pictures on a
// training batch at the end of training and every log.images_every_steps,
// its modules in eval mode and without gradients. It must not use torch's
// default random generator (a run resumed from a checkpoint must train the
// same): draw from a generator of its own. The host writes each picture to
// TensorBoard and to RUN/images/<objective>-<name>-step-<N>.png, which
// `sslab report` shows. (An addition since API 2.0: docs/plugins.md.)
class SSLAB_API Illustrator {
 public:
  virtual ~Illustrator() = default;
  // name -> image [C, H, W], C = 1 (grey) or 3 (RGB), values in [0, 1].
  virtual std::map<std::string, torch::Tensor> pictures(const Batch& batch) = 0;
};

// Results of one evaluation: name -> metric -> value, written to eval.json.
using EvalResults = std::map<std::string, std::map<std::string, double>>;

// Evaluates trained encoders (linear probe, kNN, retrieval, task metrics).
class SSLAB_API Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual EvalResults evaluate(BuildContext& ctx) = 0;
};

// Options of an EMA (momentum) target, see BuildContext::ema_target.
struct EmaOptions {
  double momentum = 0.99;
  // "constant", or "cosine": the trainer raises the momentum from `momentum`
  // to 1 over training, m = 1 - (1 - momentum) (cos(pi step / steps) + 1) / 2 (BYOL).
  std::string schedule = "constant";
};

// What a factory (and an evaluator) may use: the recipe, the registries, the
// components built so far, the device, seed and process group, and two
// services of the host (fresh copies of encoders, EMA targets). Lookups are
// read-only: only the host adds components.
class SSLAB_API BuildContext {
 public:
  BuildContext(const Recipe& recipe, const Registries& registries);
  ~BuildContext();
  BuildContext(const BuildContext&) = delete;
  BuildContext& operator=(const BuildContext&) = delete;

  const Recipe& recipe() const { return recipe_; }
  const Registries& registries() const { return registries_; }
  const torch::Device& device() const { return device_; }
  uint64_t seed() const { return seed_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The process group when world_size() > 1 (else null): objectives gather
  // negatives with all_gather_with_grad(comm().get(), x) (sslab/distributed.h).
  const std::shared_ptr<Communicator>& comm() const { return comm_; }

  // Lookups failing with a UserError that names `where` and lists known names.
  std::shared_ptr<Dataset> dataset(const std::string& split, const std::string& where = "") const;
  std::shared_ptr<Encoder> encoder(const std::string& name, const std::string& where = "") const;
  std::shared_ptr<Head> head(const std::string& name, const std::string& where = "") const;
  std::shared_ptr<Tokenizer> tokenizer(const std::string& name, const std::string& where = "") const;
  bool has_dataset(const std::string& split) const { return datasets_.count(split) != 0; }
  bool has_encoder(const std::string& name) const { return encoders_.count(name) != 0; }
  bool has_head(const std::string& name) const { return heads_.count(name) != 0; }
  bool has_tokenizer(const std::string& name) const { return tokenizers_.count(name) != 0; }
  // Names of what has been built so far, sorted.
  std::vector<std::string> encoder_names() const;
  std::vector<std::string> dataset_names() const;
  std::vector<std::string> head_names() const;

  // A freshly built, randomly initialised copy of a recipe encoder (same
  // table, same input key) on device(), seeded with `seed`: random-encoder
  // baselines and from-scratch arms. Throws UserError for an unknown name.
  std::shared_ptr<Encoder> fresh_encoder(const std::string& name, uint64_t seed, const std::string& where = "") const;

  // A momentum (EMA) copy of a built encoder or head, for BYOL/MoCo/DINO-
  // style objectives. The host updates it after every optimizer step:
  // target = m * target + (1 - m) * online (buffers copied), follows the
  // schedule, and saves it in checkpoints. Its parameters never require
  // gradients. Asking twice for the same name returns the same target (the
  // first options hold).
  std::shared_ptr<torch::nn::Module> ema_target(const std::string& name, const EmaOptions& options,
                                                const std::string& where = "");

  // What the host keeps per EMA target (read by the trainer).
  struct EmaTarget {
    std::shared_ptr<torch::nn::Module> online, target;
    double momentum = 0;  // the current momentum
    EmaOptions options;   // the base momentum and the schedule
  };

 private:
  friend struct HostAccess;  // sslab/host/experiment.h: the host fills and updates the context
  const Recipe& recipe_;
  const Registries& registries_;
  torch::Device device_ = torch::kCPU;
  uint64_t seed_ = 0;
  int rank_ = 0;
  int world_size_ = 1;
  std::shared_ptr<Communicator> comm_;
  std::map<std::string, std::shared_ptr<Dataset>> datasets_;  // by split: "train", "test"
  std::map<std::string, std::shared_ptr<Encoder>> encoders_;  // by recipe name
  std::map<std::string, std::shared_ptr<Head>> heads_;
  std::map<std::string, std::shared_ptr<Tokenizer>> tokenizers_;
  // Rebuilds a fresh copy of a named encoder/head ("encoders.<n>", "<n>").
  std::map<std::string, std::function<std::shared_ptr<torch::nn::Module>()>> builders_;
  std::map<std::string, EmaTarget> ema_targets_;
};

}  // namespace sslab
