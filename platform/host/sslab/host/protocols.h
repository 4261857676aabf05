// Downstream protocols beyond frozen-feature probes (docs/protocols.md):
//
//  - sslab.finetune: the whole encoder fine-tuned with a fresh head on a
//    seeded, stratified fraction of the training labels, beside the same
//    network trained from scratch under the identical protocol and the frozen
//    linear probe on the same subset, over several seeds;
//  - sslab.fewshot: k-shot nearest-prototype and logistic-regression accuracy
//    on frozen features over seeded episodes, beside the random encoder.
//
// Both are evaluators the host registers; a recipe runs them from
// [eval] protocols = ["probe", "finetune", "fewshot"] (configured by
// [eval.finetune] / [eval.fewshot]) or as [[evaluators]], and
// `sslab eval RUN --protocol finetune` runs one on a trained run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sslab/evaluation.h"
#include "sslab/host/loader.h"

namespace sslab {

// The training settings of one fine-tune (shared by both arms).
struct FinetuneSettings {
  int64_t epochs = 50;        // passes over the labelled training subset...
  int64_t min_steps = 200;    // ...but at least this many updates
  int64_t max_steps = 1500;   // ...and at most this many
  int64_t batch_size = 64;
  double lr = 1e-3;
  double min_lr = 1e-6;
  double weight_decay = 0.05;  // matrices only, as the trainer
  double warmup = 0.1;         // share of the steps with a linear warmup
  double layer_decay = 1.0;    // < 1: layer-wise lr decay (transformer encoders, blocks.<i>)
  std::string head = "linear";  // "linear" or "mlp"
  int64_t hidden = 256;         // the mlp head's hidden width
  double dropout = 0.0;         // before the head's last layer
  double grad_clip = 1.0;       // 0: off
  int64_t checks = 10;          // validation checks over the run
  int64_t patience = 5;         // stop after this many checks without improvement (0: never)
  int64_t workers = 1;          // loader threads
  int64_t test_batch_size = 256;
  // Test-facing description of every setting (the arms must share it).
  std::string describe() const;
};

// What one arm of one fine-tune did: recorded for the log and for tests.
struct FinetuneTrace {
  std::string arm;          // "pretrained" or "scratch"
  double fraction = 0;
  int64_t seed_index = 0;
  LabelSubset subset;       // indices into the training pool
  std::string settings;     // FinetuneSettings::describe()
  uint64_t order_seed = 0;  // the loader's shuffling and augmentation seed
  torch::Tensor head_init;  // the head's initial weights, flattened
  double encoder_init_sum = 0;  // sum of |w| of the encoder's initial parameters
  int64_t steps = 0, best_step = 0;
  double val = 0, test = 0;  // accuracy (or mAP) on the validation subset and the test split
  double seconds = 0;
};

// One labelled task: a training pool, a test set, the label key.
struct FinetuneTask {
  std::shared_ptr<Dataset> train, test;
  std::string label = "label";
  int64_t classes = 0;       // single-label: number of classes
  bool multilabel = false;   // multi-hot [K] labels, mAP instead of accuracy
  int64_t test_limit = 0;
  std::vector<Pipeline> augment;  // applied to training samples only
};

// The updates of one fine-tune on `train_samples` labelled samples: `epochs`
// passes of drop-last batches, clamped to [min_steps, max_steps].
SSLAB_API int64_t finetune_steps(const FinetuneSettings& settings, int64_t train_samples);

// Fine-tunes `encoder` (trained in place) with a fresh head, seeded by
// `head_seed`, on task.train's `subset` (early stopping on subset.val), then
// scores the best-validation weights on task.test. `order_seed` seeds the
// batch order and augmentation. `progress` (may be null) gets each step.
SSLAB_API FinetuneTrace finetune_encoder(const std::shared_ptr<Encoder>& encoder, const FinetuneTask& task,
                                         const LabelSubset& subset, const FinetuneSettings& settings,
                                         uint64_t head_seed, uint64_t order_seed, const torch::Device& device,
                                         const std::function<void(int64_t step, double loss)>& progress = {});

// AdamW parameter groups for fine-tuning: weight decay on matrices only; with
// layer_decay < 1, an encoder parameter in blocks.<i> (of `depth` blocks)
// gets lr * layer_decay^(depth - i), one before the blocks (embeddings)
// lr * layer_decay^(depth + 1), and one after them (final norm) the full lr.
// An encoder without blocks.<i> parameters is a UserError naming `who`.
struct LrGroup {
  std::vector<torch::Tensor> params;
  double lr_scale = 1.0;
  double weight_decay = 0.0;
};
SSLAB_API std::vector<LrGroup> finetune_groups(torch::nn::Module& encoder, torch::nn::Module& head,
                                               double weight_decay, double layer_decay, const std::string& who);

// Copies every parameter and buffer of `from` into `to` (same architecture).
SSLAB_API void copy_module_state(torch::nn::Module& from, torch::nn::Module& to);

// The fine-tuning evaluator; set_trace() gets every arm (tests, logs).
class SSLAB_API FinetuneEvaluator : public Evaluator {
 public:
  struct Options;
  FinetuneEvaluator(std::shared_ptr<Options> options, std::string where);
  EvalResults evaluate(BuildContext& ctx) override;
  void set_trace(std::function<void(const FinetuneTrace&)> fn) { trace_ = std::move(fn); }

 private:
  std::shared_ptr<Options> o_;
  std::string where_;
  std::function<void(const FinetuneTrace&)> trace_;
};

// "1%", "10%", "0.5%", "100%": a fraction as result names show it.
SSLAB_API std::string fraction_name(double fraction);

SSLAB_API Schema finetune_schema();
SSLAB_API Schema fewshot_schema();
SSLAB_API std::shared_ptr<Evaluator> make_finetune(const Config& cfg, BuildContext& ctx);
SSLAB_API std::shared_ptr<Evaluator> make_fewshot(const Config& cfg, BuildContext& ctx);

}  // namespace sslab
