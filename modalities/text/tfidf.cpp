#include "tfidf.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>


namespace sslab::text {

void Tfidf::fit(const std::vector<std::vector<int64_t>>& docs) {
  std::unordered_map<int64_t, int64_t> df;
  std::vector<int64_t> ignore = ignore_;
  std::sort(ignore.begin(), ignore.end());
  for (const auto& d : docs) {
    std::vector<int64_t> u = d;
    std::sort(u.begin(), u.end());
    u.erase(std::unique(u.begin(), u.end()), u.end());
    for (int64_t id : u)
      if (!std::binary_search(ignore.begin(), ignore.end(), id)) ++df[id];
  }
  std::vector<std::pair<int64_t, int64_t>> by_df(df.begin(), df.end());  // (id, df)
  std::sort(by_df.begin(), by_df.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (max_features_ > 0 && static_cast<int64_t>(by_df.size()) > max_features_)
    by_df.resize(static_cast<size_t>(max_features_));
  std::sort(by_df.begin(), by_df.end());
  vocab_.clear();
  idf_.clear();
  int64_t max_id = 0;
  for (const auto& [id, f] : by_df) max_id = std::max(max_id, id);
  column_.assign(static_cast<size_t>(max_id + 1), -1);
  const double n = static_cast<double>(docs.size());
  for (const auto& [id, f] : by_df) {
    column_[static_cast<size_t>(id)] = static_cast<int64_t>(vocab_.size());
    vocab_.push_back(id);
    idf_.push_back(std::log((1.0 + n) / (1.0 + static_cast<double>(f))) + 1.0);
  }
}

torch::Tensor Tfidf::transform(const std::vector<std::vector<int64_t>>& docs) const {
  const int64_t F = features();
  torch::Tensor out = torch::zeros({static_cast<int64_t>(docs.size()), F}, torch::kFloat32);
  float* base = out.data_ptr<float>();
  std::unordered_map<int64_t, int64_t> counts;
  for (size_t r = 0; r < docs.size(); ++r) {
    counts.clear();
    for (int64_t id : docs[r]) {
      if (id < 0 || id >= static_cast<int64_t>(column_.size())) continue;
      int64_t c = column_[static_cast<size_t>(id)];
      if (c >= 0) ++counts[c];
    }
    float* row = base + static_cast<int64_t>(r) * F;
    double norm = 0;
    for (const auto& [c, k] : counts) {
      double v = (1.0 + std::log(static_cast<double>(k))) * idf_[static_cast<size_t>(c)];
      row[c] = static_cast<float>(v);
      norm += v * v;
    }
    if (norm > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (const auto& [c, k] : counts) row[c] *= inv;
    }
  }
  return out;
}

EvalResults TfidfBaseline::evaluate(BuildContext& ctx) {
  const char* who = "text.tfidf_baseline";
  const ProbeSettings& ps = options_.settings;
  const std::string& key = options_.key;
  auto read = [&](const std::string& split, int64_t limit, torch::Tensor* labels) {
    std::vector<std::vector<int64_t>> docs;
    std::vector<torch::Tensor> ys;
    for_each_batch(*ctx.dataset(split, who), limit, ps.batch_size, [&](const Batch& b) {
      SSLAB_CHECK(b.has("label"), who, ": the ", split, " samples have no label");
      ys.push_back(b.at("label"));
      torch::Tensor ids = b.at(key).to(torch::kInt64).contiguous();
      torch::Tensor lengths = b.has(key + ".length") ? b.at(key + ".length")
                                                      : torch::full({b.size}, ids.size(1), torch::kInt64);
      for (int64_t i = 0; i < b.size; ++i) {
        const int64_t* row = ids[i].data_ptr<int64_t>();
        docs.emplace_back(row, row + lengths[i].item<int64_t>());
      }
    });
    *labels = torch::cat(ys);
    return docs;
  };
  torch::Tensor ytr, yte;
  auto train = read("train", ps.train_limit, &ytr);
  auto test = read("test", ps.test_limit, &yte);
  Tfidf tfidf(options_.max_features, ignore_);
  tfidf.fit(train);
  torch::Tensor xtr = tfidf.transform(train), xte = tfidf.transform(test);
  ProbeOptions po = ps.probe;
  po.seed = ctx.seed();
  int64_t classes = ctx.dataset("train")->num_classes();
  EvalResults r;
  r["baseline_tfidf_linear"]["accuracy"] = linear_probe_accuracy(xtr, ytr, xte, yte, classes, po);
  r["baseline_tfidf_linear"]["features"] = static_cast<double>(tfidf.features());
  return r;
}

}  // namespace sslab::text
