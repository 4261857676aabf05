#include "datasets.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "audio_io.h"

namespace sslab::audio {
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, '\t')) out.push_back(cell);
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

}  // namespace

torch::Tensor crop_wave(const torch::Tensor& wave, int64_t n, const std::string& where, int64_t offset) {
  const int64_t s = wave.size(0);
  if (n <= 0 || s <= n) return wave;
  int64_t start = 0;
  if (where == "center")
    start = (s - n) / 2;
  else if (where == "offset")
    start = std::clamp<int64_t>(offset, 0, s - n);
  return wave.narrow(0, start, n).clone();
}

ManifestDataset::ManifestDataset(ManifestOptions options) : options_(std::move(options)) {
  const std::string& file = options_.manifest;
  std::ifstream in(file);
  SSLAB_CHECK(in, file, ": cannot open the manifest");
  std::string line;
  SSLAB_CHECK(std::getline(in, line), file, ": empty manifest (expected a header line: path<TAB>label columns)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> header = split_tabs(line);
  SSLAB_CHECK(!header.empty() && header[0] == "path", file, ":1: the header must start with the column 'path', got '",
              header.empty() ? "" : header[0], "'");
  int split_col = -1;
  std::vector<int> label_cols;
  for (size_t i = 1; i < header.size(); ++i) {
    if (header[i] == "split") {
      split_col = static_cast<int>(i);
    } else {
      label_cols.push_back(static_cast<int>(i));
      columns_.push_back(header[i]);
    }
  }
  if (!options_.label.empty()) {
    auto it = std::find(columns_.begin(), columns_.end(), options_.label);
    SSLAB_CHECK(it != columns_.end(), file, ": no label column '", options_.label, "'; the manifest has: ", [&] {
      std::string s;
      for (const auto& c : columns_) s += (s.empty() ? "" : ", ") + c;
      return s.empty() ? std::string("(none)") : s;
    }());
    label_index_ = static_cast<int>(it - columns_.begin());
  }
  const std::filesystem::path folder = std::filesystem::path(file).parent_path();
  struct Raw {
    std::string path, split;
    std::vector<std::string> values;
  };
  std::vector<Raw> raw;
  std::vector<std::set<std::string>> values(columns_.size());
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto cells = split_tabs(line);
    SSLAB_CHECK(cells.size() == header.size(), file, ":", line_no, ": expected ", header.size(),
                " tab-separated cells, got ", cells.size());
    Raw r;
    std::filesystem::path p(cells[0]);
    r.path = p.is_relative() ? (folder / p).string() : p.string();
    if (split_col >= 0) {
      r.split = cells[static_cast<size_t>(split_col)];
      SSLAB_CHECK(r.split == "train" || r.split == "test", file, ":", line_no, ": split must be train or test, got '",
                  r.split, "'");
    }
    for (size_t c = 0; c < label_cols.size(); ++c) {
      r.values.push_back(cells[static_cast<size_t>(label_cols[c])]);
      values[c].insert(r.values.back());
    }
    raw.push_back(std::move(r));
  }
  SSLAB_CHECK(!raw.empty(), file, ": the manifest lists no files");
  for (const auto& v : values) class_names_.emplace_back(v.begin(), v.end());

  // Seeded, stratified split when the manifest does not fix one.
  std::vector<char> is_test(raw.size(), 0);
  if (split_col >= 0) {
    for (size_t i = 0; i < raw.size(); ++i) is_test[i] = raw[i].split == "test";
  } else {
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < raw.size(); ++i) groups[label_index_ >= 0 ? raw[i].values[label_index_] : ""].push_back(i);
    std::mt19937_64 rng(options_.split_seed);
    for (auto& [name, idx] : groups) {
      std::shuffle(idx.begin(), idx.end(), rng);
      const auto n_test = static_cast<size_t>(std::llround(options_.test_fraction * static_cast<double>(idx.size())));
      for (size_t k = 0; k < n_test && k < idx.size(); ++k) is_test[idx[k]] = 1;
    }
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    if (options_.split == "train" && is_test[i]) continue;
    if (options_.split == "test" && !is_test[i]) continue;
    Row row;
    row.path = raw[i].path;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const auto& names = class_names_[c];
      row.labels.push_back(std::lower_bound(names.begin(), names.end(), raw[i].values[c]) - names.begin());
    }
    rows_.push_back(std::move(row));
  }
  SSLAB_CHECK(!rows_.empty(), file, ": the ", options_.split, " split is empty");
}

int64_t ManifestDataset::classes(const std::string& column) const {
  for (size_t c = 0; c < columns_.size(); ++c)
    if (columns_[c] == column) return static_cast<int64_t>(class_names_[c].size());
  return 0;
}

int64_t ManifestDataset::num_classes() const {
  return label_index_ < 0 ? 0 : static_cast<int64_t>(class_names_[static_cast<size_t>(label_index_)].size());
}

Sample ManifestDataset::get(int64_t index) const {
  const Row& row = rows_.at(static_cast<size_t>(index));
  torch::Tensor wave = load_wave_cached(row.path, options_.sample_rate, options_.resample_cache);
  if (options_.seconds > 0)
    wave = crop_wave(wave, static_cast<int64_t>(std::llround(options_.seconds * options_.sample_rate)), options_.crop);
  Sample s;
  s["audio.wave"] = wave;
  for (size_t c = 0; c < columns_.size(); ++c) s["label." + columns_[c]] = torch::tensor(row.labels[c], torch::kInt64);
  if (label_index_ >= 0) s["label"] = torch::tensor(row.labels[static_cast<size_t>(label_index_)], torch::kInt64);
  return s;
}

Sample SyntheticVoices::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < options_.size, "synthetic voices: index ", index, " out of range");
  const int64_t voice = index % options_.voices;
  // Voice parameters depend on the voice only (not on the seed or split).
  std::mt19937_64 vrng(0x5eed0000ull + static_cast<uint64_t>(voice));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double f0 = 90.0 * std::pow(2.0, 2.0 * static_cast<double>(voice) / std::max<int64_t>(1, options_.voices));
  double formants[3] = {300 + 500 * u(vrng), 900 + 1200 * u(vrng), 2200 + 1000 * u(vrng)};
  // Sample parameters.
  std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index) + 1);
  std::normal_distribution<double> gauss(0.0, 1.0);
  const int64_t sr = options_.sample_rate;
  const int64_t n = static_cast<int64_t>(std::llround(options_.seconds * sr));
  // A melody of "syllables": every 60-120 ms a new pitch from the voice's
  // register (0-12 semitones above f0) with an attack/decay envelope, so the
  // near future is predictable from the present and the voice from formants.
  std::vector<float> out(static_cast<size_t>(n));
  const int harmonics = 24;
  std::vector<double> amp(harmonics, 0.0);
  double phase = 0, pitch = f0;
  int64_t note_end = 0, note_start = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i >= note_end) {
      note_start = i;
      note_end = i + static_cast<int64_t>((0.06 + 0.06 * u(rng)) * sr);
      pitch = f0 * std::pow(2.0, std::floor(13 * u(rng)) / 12.0);
      for (int h = 1; h <= harmonics; ++h) {
        double a = 0;
        for (double fm : formants) a += std::exp(-0.5 * std::pow((pitch * h - fm) / 150.0, 2));
        amp[static_cast<size_t>(h - 1)] = (a + 0.02) / h;
      }
    }
    phase += 2 * M_PI * pitch / sr;
    double s = 0;
    for (int h = 1; h <= harmonics && pitch * h < sr / 2.0; ++h)
      s += amp[static_cast<size_t>(h - 1)] * std::sin(h * phase);
    const double pos = static_cast<double>(i - note_start) / static_cast<double>(note_end - note_start);
    const double env = std::min(1.0, 10 * pos) * (1.0 - 0.5 * pos);
    out[static_cast<size_t>(i)] = static_cast<float>(0.3 * env * s + options_.noise * gauss(rng));
  }
  Sample smp;
  smp["audio.wave"] = torch::from_blob(out.data(), {n}, torch::kFloat32).clone();
  smp["label"] = torch::tensor(voice, torch::kInt64);
  smp["label.speaker"] = torch::tensor(voice, torch::kInt64);
  return smp;
}

}  // namespace sslab::audio
