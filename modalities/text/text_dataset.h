// The text.files dataset: entries of line files or %-separated (fortune)
// files, labelled by file name, folder name or a manifest, split into
// train/test by a seeded, stratified draw inside the dataset, and tokenised
// in get() by a named tokenizer.
//
// A sample is {"text.ids": int64 [T], "label": int64 []} (the key is
// configurable): [CLS] pieces... [SEP] (with add_special), at most
// max_length ids. Longer entries are truncated, or cut into windows that
// become samples of their own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <sslab/components.h>

#include "text_reader.h"

namespace sslab::text {

struct TextDatasetOptions {
  std::vector<std::string> paths;  // files or folders (label = file|dir|none)
  std::string manifest;            // TSV "path<TAB>label" (label = manifest)
  std::vector<std::string> skip_suffixes = {".dat"};
  TextFormat format = TextFormat::Fortune;
  std::string label = "file";  // file, dir, manifest or none
  std::string split = "all";   // all, train or test
  double test_fraction = 0.2;
  uint64_t split_seed = 0;
  std::string order = "seeded";  // "seeded": a shuffle mixing the classes; "file": as the files list them
  int64_t max_length = 128;               // ids per sample, [CLS]/[SEP] included
  std::string long_entries = "truncate";  // truncate or window
  int64_t window_stride = 0;              // pieces between window starts (0: max_length minus specials)
  bool add_special = true;                // wrap in [CLS] ... [SEP]
  bool skip_invalid = false;              // invalid UTF-8: skip the entry (and count) instead of failing
  std::string key = "text.ids";
};

class TextDataset : public Dataset {
 public:
  TextDataset(const TextDatasetOptions& options, std::shared_ptr<Tokenizer> tokenizer);

  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }

  // Class names in label order (sorted).
  const std::vector<std::string>& classes() const { return classes_; }
  // The entry text of sample `index` (a window's whole entry).
  const std::string& text(int64_t index) const;
  int64_t label(int64_t index) const;
  // Entries dropped while reading all files (both splits).
  const ReadStats& stats() const { return stats_; }
  // Entries longer than max_length (in this split).
  int64_t long_entries() const { return long_; }
  const TextDatasetOptions& options() const { return options_; }

 private:
  struct Item {
    int32_t entry;       // index into texts_
    int32_t window = 0;  // window number (0 when truncating)
  };
  TextDatasetOptions options_;
  std::shared_ptr<Tokenizer> tokenizer_;
  int64_t cls_ = -1, sep_ = -1;
  std::vector<std::string> classes_;
  std::vector<std::string> texts_;
  std::vector<int64_t> labels_;
  std::vector<Item> items_;
  ReadStats stats_;
  int64_t long_ = 0;
};

}  // namespace sslab::text
