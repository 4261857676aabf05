// Run logging: metrics.jsonl, TensorBoard event files and a progress display.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "sslab/export.h"

namespace sslab {

// Appends JSON objects, one per line: {"step":10,"loss":0.5,...} (step first,
// then the metrics by name; 9 significant digits; null for NaN/infinity).
class SSLAB_API MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);
  // UserError naming the file when the write fails (no space, quota).
  void write(int64_t step, const std::map<std::string, double>& metrics);

 private:
  std::string path_;
  std::ofstream out_;
};

// Writes TensorBoard event files (TFRecord framing with masked CRC-32C,
// Event protos with scalar and image summaries) that TensorBoard reads.
class SSLAB_API TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& dir);
  void add_scalar(const std::string& tag, double value, int64_t step);
  // An image summary: `png` is a PNG file's bytes (encode_png) of h x w pixels and `channels` (1 or 3).
  void add_image(const std::string& tag, const std::string& png, int64_t height, int64_t width, int channels,
                 int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  // Wraps one Summary.Value in Summary { value = 1 } and Event { wall_time = 1; step = 2; summary = 5 }.
  void write_summary_value(const std::string& value, int64_t step);
  std::string path_;
  std::ofstream out_;
};

// CRC-32C (Castagnoli) and TFRecord's masked form; exposed for tests.
SSLAB_API uint32_t crc32c(const void* data, size_t size);
// The CRC-32C of (what gave `crc`) followed by `data`: crc32c_extend(0, d, n) == crc32c(d, n).
SSLAB_API uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
SSLAB_API uint32_t masked_crc32c(const void* data, size_t size);

// A progress bar with rate and ETA on a terminal, plain lines otherwise.
class SSLAB_API Progress {
 public:
  enum class Mode { Bar, Plain, None };
  // mode "auto" picks Bar when stderr is a terminal.
  Progress(const std::string& mode, int64_t total_steps, int64_t start_step);
  void update(int64_t step, const std::map<std::string, double>& metrics);
  void finish();

 private:
  Mode mode_;
  int64_t total_, start_;
  std::chrono::steady_clock::time_point t0_;
  bool drawn_ = false;
};

}  // namespace sslab
