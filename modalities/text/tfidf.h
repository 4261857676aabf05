// The bag-of-words baseline: TF-IDF features of the token ids of each
// sample (the same pieces the encoder sees), then the platform's linear
// probe (sslab::linear_probe_accuracy), so the baseline and the SSL probe are
// the same classifier on different features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::text {

// sklearn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2")
// over ids: tf = 1 + log(count), idf = ln((1 + n) / (1 + df)) + 1, each row
// L2-normalised. The vocabulary is the max_features ids most frequent (by
// document frequency, ties to the smaller id) in the fitted documents,
// ignoring `ignore` ids (special tokens).
class Tfidf {
 public:
  Tfidf(int64_t max_features, std::vector<int64_t> ignore) : max_features_(max_features), ignore_(std::move(ignore)) {}
  void fit(const std::vector<std::vector<int64_t>>& docs);
  torch::Tensor transform(const std::vector<std::vector<int64_t>>& docs) const;  // [N, features] float32
  int64_t features() const { return static_cast<int64_t>(idf_.size()); }

 private:
  int64_t max_features_;
  std::vector<int64_t> ignore_;
  std::vector<int64_t> vocab_;   // feature -> id
  std::vector<int64_t> column_;  // id -> feature or -1
  std::vector<double> idf_;
};

// The evaluator text.tfidf_baseline: reads the "train" and "test" datasets
// (their first eval.train_limit / eval.test_limit samples, like the platform's
// probes) and writes "baseline_tfidf_linear": {accuracy, features}.
class TfidfBaseline : public Evaluator {
 public:
  TfidfBaseline(std::string key, int64_t max_features, std::vector<int64_t> ignore)
      : key_(std::move(key)), max_features_(max_features), ignore_(std::move(ignore)) {}
  EvalResults evaluate(BuildContext& ctx) override;

 private:
  std::string key_;
  int64_t max_features_;
  std::vector<int64_t> ignore_;
};

}  // namespace sslab::text
