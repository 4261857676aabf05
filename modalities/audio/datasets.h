// Audio datasets: a manifest of files with label columns, and synthetic
// "voices" (harmonic tones with formants) for smoke runs and tests.
//
// Samples hold "audio.wave" float32 [S] (mono, at the dataset's rate; length
// varies: the loader pads and adds "audio.wave.length"/".mask"), "label"
// (the recipe's chosen label column) and "label.<column>" for every column.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::audio {

struct ManifestOptions {
  std::string manifest;         // TSV with a header: path, label columns, optional split
  std::string split = "train";  // train, test or all
  double test_fraction = 0.2;   // when the manifest has no split column
  uint64_t split_seed = 0;
  std::string label;  // column that becomes "label" ("" : none)
  int64_t sample_rate = 16000;
  double seconds = 0;          // 0: whole clips; else crop to at most this
  std::string crop = "start";  // start or center (fixed crops; random ones are a transform)
  std::string resample_cache;  // folder of resampled clips ("" : resample on every read)
};

// path<TAB>col1<TAB>col2... Paths are relative to the manifest's folder.
// Class indices of a column are its sorted distinct values over the whole
// manifest, so train and test agree. Without a split column the split is
// seeded and stratified by `label` (each class keeps test_fraction in test).
class ManifestDataset : public Dataset {
 public:
  explicit ManifestDataset(ManifestOptions options);
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override;

  const std::vector<std::string>& label_columns() const { return columns_; }
  int64_t classes(const std::string& column) const;
  const std::string& path(int64_t index) const { return rows_.at(static_cast<size_t>(index)).path; }

 private:
  struct Row {
    std::string path;
    std::vector<int64_t> labels;  // per column
  };
  ManifestOptions options_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> class_names_;
  std::vector<Row> rows_;
  int label_index_ = -1;
};

// Deterministic synthetic voices: voice v has its own pitch register and
// formants; each sample is a random melody of 60-120 ms "syllables" in that
// register (attack/decay envelope) plus noise. Labels "label" = "label.speaker" = v.
struct SyntheticVoicesOptions {
  int64_t size = 512;
  int64_t voices = 4;
  int64_t sample_rate = 16000;
  double seconds = 0.5;
  double noise = 0.02;  // noise standard deviation
  uint64_t seed = 0;    // different seeds give disjoint sets (train vs test)
};

class SyntheticVoices : public Dataset {
 public:
  explicit SyntheticVoices(SyntheticVoicesOptions options) : options_(options) {}
  int64_t size() const override { return options_.size; }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return options_.voices; }

 private:
  SyntheticVoicesOptions options_;
};

// Crops a wave [S] to at most n samples: from the start, the centre, or at
// `offset` (clamped).
torch::Tensor crop_wave(const torch::Tensor& wave, int64_t n, const std::string& where, int64_t offset = 0);

}  // namespace sslab::audio
