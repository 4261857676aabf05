// Evaluation of learned representations: linear probe and kNN on frozen
// embeddings, next to raw-input and random-encoder baselines, plus any
// plugin evaluators. Results go to eval.json and a table on stdout.
#pragma once

#include <functional>
#include <string>

#include "sslab/experiment.h"

namespace sslab {

// Embeddings [N, D] (float32, CPU) of the first `limit` samples of a dataset
// (0: all) computed by `fn` in eval mode without gradients; labels [N] int64
// are written to *labels when the samples have "label".
SSLAB_API torch::Tensor embed_dataset(Dataset& data, int64_t limit, int64_t batch_size, const torch::Device& device,
                                      const std::function<torch::Tensor(const Batch&)>& fn, torch::Tensor* labels);

struct ProbeOptions {
  int64_t epochs = 30;
  double lr = 1e-2;
  double weight_decay = 1e-4;
  int64_t batch_size = 1024;
  uint64_t seed = 0;
};

// Multinomial logistic regression on standardised features (statistics from
// the training set), trained with AdamW; returns test accuracy.
SSLAB_API double linear_probe_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                       const torch::Tensor& test_x, const torch::Tensor& test_y, int64_t classes,
                                       const ProbeOptions& options);

// Cosine-similarity kNN with majority vote among the k nearest training
// embeddings (ties broken by summed similarity); returns test accuracy.
SSLAB_API double knn_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                              const torch::Tensor& test_y, int64_t classes, int64_t k);

// Runs the recipe's [eval] on an experiment whose weights are loaded.
// Writes <run_dir>/eval.json when run_dir is not empty.
SSLAB_API EvalResults evaluate(Experiment& exp, const std::string& run_dir);

SSLAB_API std::string eval_json(const EvalResults& results);
// Writes eval_json(results) to path through a .tmp file and a rename, so a
// reader never sees half a file; a path that cannot be written is a UserError.
SSLAB_API void save_eval_json(const EvalResults& results, const std::string& path);
SSLAB_API std::string eval_table(const EvalResults& results);

}  // namespace sslab
