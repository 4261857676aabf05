// The bag-of-words baseline: TF-IDF features of the token ids of each
// sample (the same pieces the encoder sees), then the platform's linear
// probe (sslab::linear_probe_accuracy), so the baseline and the SSL probe are
// the same classifier on different features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>
#include <sslab/evaluation.h>

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

struct TfidfBaselineOptions {
  std::string key = "text.ids";     // sample key of the token ids
  std::string tokenizer = "text";   // its special ids are not features
  int64_t max_features = 4096;
  ProbeSettings settings;           // train_limit, test_limit, batch_size, probe options
};

// The evaluator text.tfidf_baseline: reads the first train_limit / test_limit
// samples of the "train" and "test" datasets and writes
// "baseline_tfidf_linear": {accuracy, features}.
class TfidfBaseline : public Evaluator {
 public:
  TfidfBaseline(TfidfBaselineOptions options, std::vector<int64_t> ignore)
      : options_(std::move(options)), ignore_(std::move(ignore)) {}
  EvalResults evaluate(BuildContext& ctx) override;

 private:
  TfidfBaselineOptions options_;
  std::vector<int64_t> ignore_;
};

}  // namespace sslab::text
