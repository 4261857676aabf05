#include "text_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace sslab::text {

namespace fs = std::filesystem;

namespace {

// Deterministic Fisher-Yates (the same on every standard library).
template <typename T>
void shuffle(std::vector<T>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

TextDataset::TextDataset(const TextDatasetOptions& options, std::shared_ptr<Tokenizer> tokenizer)
    : options_(options), tokenizer_(std::move(tokenizer)) {
  SSLAB_CHECK(tokenizer_, "text.files: a tokenizer is required");
  const int64_t specials = options_.add_special ? 2 : 0;
  SSLAB_CHECK(options_.max_length > specials, "text.files: max_length (", options_.max_length,
              ") must leave room for at least one piece besides [CLS] and [SEP]");
  if (options_.add_special) {
    cls_ = tokenizer_->special_id("[CLS]");
    sep_ = tokenizer_->special_id("[SEP]");
    SSLAB_CHECK(cls_ >= 0 && sep_ >= 0, "text.files: add_special needs a tokenizer with [CLS] and [SEP]");
  }
  // Files and their label names.
  std::vector<std::pair<std::string, std::string>> files;
  if (options_.label == "manifest") {
    SSLAB_CHECK(!options_.manifest.empty(), "text.files: label = \"manifest\" needs a manifest file");
    files = read_manifest(options_.manifest, options_.skip_suffixes);
  } else {
    SSLAB_CHECK(!options_.paths.empty(), "text.files: no files given");
    for (const auto& f : expand_paths(options_.paths, options_.skip_suffixes)) {
      std::string name;
      if (options_.label == "file")
        name = fs::path(f).filename().string();
      else if (options_.label == "dir")
        name = fs::path(f).parent_path().filename().string();
      files.emplace_back(f, name);
    }
  }
  std::map<std::string, int64_t> class_ids;
  if (options_.label != "none") {
    for (const auto& [f, name] : files) class_ids[name] = 0;
    for (auto& [name, id] : class_ids) {
      id = static_cast<int64_t>(classes_.size());
      classes_.push_back(name);
    }
  }
  // Every entry of every file, labelled.
  std::vector<std::string> all_texts;
  std::vector<int64_t> all_labels;
  for (const auto& [f, name] : files) {
    for (auto& e : read_entries(f, options_.format, options_.skip_invalid, &stats_)) {
      all_texts.push_back(std::move(e.text));
      all_labels.push_back(options_.label == "none" ? 0 : class_ids.at(name));
    }
  }
  SSLAB_CHECK(!all_texts.empty(), "text.files: no entries in ", files.size(), " file(s) (",
              files.empty() ? std::string("none") : files.front().first, files.size() > 1 ? ", ..." : "", ")");
  // Stratified split: within each class, a seeded shuffle; the first
  // round(n * test_fraction) entries are the test split.
  std::map<int64_t, std::vector<int32_t>> by_class;
  for (size_t i = 0; i < all_texts.size(); ++i) by_class[all_labels[i]].push_back(static_cast<int32_t>(i));
  std::vector<int32_t> chosen;
  for (auto& [label, idx] : by_class) {
    std::string cname = options_.label == "none" ? "" : classes_[static_cast<size_t>(label)];
    shuffle(idx, options_.split_seed ^ hash_name(cname));
    size_t n_test = static_cast<size_t>(std::llround(static_cast<double>(idx.size()) * options_.test_fraction));
    if (options_.split == "all")
      chosen.insert(chosen.end(), idx.begin(), idx.end());
    else if (options_.split == "test")
      chosen.insert(chosen.end(), idx.begin(), idx.begin() + n_test);
    else
      chosen.insert(chosen.end(), idx.begin() + n_test, idx.end());
  }
  std::sort(chosen.begin(), chosen.end());
  // A seeded order mixing the classes, so that `limit` takes a fair sample.
  if (options_.order == "seeded") shuffle(chosen, options_.split_seed + 1);
  for (int32_t i : chosen) {
    texts_.push_back(std::move(all_texts[static_cast<size_t>(i)]));
    labels_.push_back(all_labels[static_cast<size_t>(i)]);
  }
  const int64_t body = options_.max_length - specials;
  const int64_t stride = options_.window_stride > 0 ? options_.window_stride : body;
  for (size_t e = 0; e < texts_.size(); ++e) {
    if (options_.long_entries == "window") {
      int64_t n = static_cast<int64_t>(tokenizer_->encode(texts_[e]).size());
      if (n > body) ++long_;
      int32_t w = 0;
      for (int64_t start = 0;; start += stride, ++w) {
        items_.push_back({static_cast<int32_t>(e), w});
        if (start + body >= n) break;
      }
    } else {
      items_.push_back({static_cast<int32_t>(e), 0});
    }
  }
}

const std::string& TextDataset::text(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "text.files: index ", index, " out of range [0, ", size(), ")");
  return texts_[static_cast<size_t>(items_[static_cast<size_t>(index)].entry)];
}

int64_t TextDataset::label(int64_t index) const {
  return labels_[static_cast<size_t>(items_[static_cast<size_t>(index)].entry)];
}

Sample TextDataset::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "text.files: index ", index, " out of range [0, ", size(), ")");
  const Item& item = items_[static_cast<size_t>(index)];
  std::vector<int64_t> pieces = tokenizer_->encode(texts_[static_cast<size_t>(item.entry)]);
  const int64_t specials = options_.add_special ? 2 : 0;
  const int64_t body = options_.max_length - specials;
  const int64_t stride = options_.window_stride > 0 ? options_.window_stride : body;
  const int64_t n = static_cast<int64_t>(pieces.size());
  const int64_t start = std::min<int64_t>(static_cast<int64_t>(item.window) * stride, n);
  const int64_t len = std::min(body, n - start);
  torch::Tensor ids = torch::empty({len + specials}, torch::kInt64);
  int64_t* p = ids.data_ptr<int64_t>();
  if (options_.add_special) *p++ = cls_;
  std::copy(pieces.begin() + start, pieces.begin() + start + len, p);
  if (options_.add_special) p[len] = sep_;
  Sample s;
  s[options_.key] = ids;
  if (options_.label != "none") s["label"] = torch::tensor(labels_[static_cast<size_t>(item.entry)], torch::kInt64);
  return s;
}

}  // namespace sslab::text
