#include "sslab/host/run_log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "sslab/error.h"
#include "sslab/host/json.h"

namespace sslab {

namespace {
// A failed write to an append-only log (no space, quota, file size limit):
// one clear line; the checkpoints already written stay loadable.
void check_written(const std::ofstream& out, const std::string& path) {
  if (out) return;
  int err = errno;
  throw UserError(str(path, ": cannot write (", err != 0 ? std::strerror(err) : "write failed",
                      "); the run stops, its checkpoints are kept"));
}
}  // namespace

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  SSLAB_CHECK(out_, "cannot write metrics file '", path, "'");
}

void MetricsWriter::write(int64_t step, const std::map<std::string, double>& metrics) {
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["step"] = step;
  for (const auto& [k, v] : metrics) line[k] = json_number(v, 9);
  errno = 0;
  out_ << json_line(line) << "\n";
  out_.flush();
  check_written(out_, path_);
}

// ---------------------------------------------------------------- CRC-32C

uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc ^= 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// ---------------------------------------------------------------- protobuf

namespace {
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void tag(std::string& out, int field, int wire) { varint(out, (static_cast<uint64_t>(field) << 3) | wire); }
void field_bytes(std::string& out, int field, const std::string& bytes) {
  tag(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}
void field_double(std::string& out, int field, double v) {
  tag(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void field_float(std::string& out, int field, float v) {
  tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
void field_varint(std::string& out, int field, uint64_t v) {
  tag(out, field, 0);
  varint(out, v);
}
double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  std::ostringstream name;
  name << "events.out.tfevents." << static_cast<int64_t>(wall_time()) << "." << host << "." << getpid();
  path_ = (std::filesystem::path(dir) / name.str()).string();
  out_.open(path_, std::ios::binary | std::ios::app);
  SSLAB_CHECK(out_, "cannot write TensorBoard file '", path_, "'");
  // Event { wall_time = 1; file_version = 3 }
  std::string event;
  field_double(event, 1, wall_time());
  field_bytes(event, 3, "brain.Event:2");
  write_record(event);
  flush();
}

void TensorBoardWriter::write_record(const std::string& data) {
  errno = 0;
  uint64_t len = data.size();
  char header[8];
  std::memcpy(header, &len, 8);
  uint32_t len_crc = masked_crc32c(header, 8);
  uint32_t data_crc = masked_crc32c(data.data(), data.size());
  out_.write(header, 8);
  out_.write(reinterpret_cast<const char*>(&len_crc), 4);
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  out_.write(reinterpret_cast<const char*>(&data_crc), 4);
}

void TensorBoardWriter::add_scalar(const std::string& tag_name, double value, int64_t step) {
  // Summary.Value { tag = 1; simple_value = 2 }, Summary { value = 1 },
  // Event { wall_time = 1; step = 2; summary = 5 }.
  std::string v;
  field_bytes(v, 1, tag_name);
  field_float(v, 2, static_cast<float>(value));
  write_summary_value(v, step);
}

void TensorBoardWriter::write_summary_value(const std::string& value, int64_t step) {
  std::string summary;
  field_bytes(summary, 1, value);
  std::string event;
  field_double(event, 1, wall_time());
  field_varint(event, 2, static_cast<uint64_t>(step));
  field_bytes(event, 5, summary);
  write_record(event);
}

void TensorBoardWriter::add_image(const std::string& tag_name, const std::string& png, int64_t height, int64_t width,
                                  int channels, int64_t step) {
  // Summary.Image { height = 1; width = 2; colorspace = 3; encoded_image_string = 4 },
  // Summary.Value { tag = 1; image = 4 }.
  std::string image;
  field_varint(image, 1, static_cast<uint64_t>(height));
  field_varint(image, 2, static_cast<uint64_t>(width));
  field_varint(image, 3, static_cast<uint64_t>(channels));
  field_bytes(image, 4, png);
  std::string v;
  field_bytes(v, 1, tag_name);
  field_bytes(v, 4, image);
  write_summary_value(v, step);
}

void TensorBoardWriter::flush() {
  out_.flush();
  check_written(out_, path_);
}

// ---------------------------------------------------------------- Progress

Progress::Progress(const std::string& mode, int64_t total_steps, int64_t start_step)
    : total_(total_steps), start_(start_step), t0_(std::chrono::steady_clock::now()) {
  if (mode == "none") mode_ = Mode::None;
  else if (mode == "plain") mode_ = Mode::Plain;
  else if (mode == "bar") mode_ = Mode::Bar;
  else mode_ = isatty(STDERR_FILENO) ? Mode::Bar : Mode::Plain;
}

static std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", (long)(t / 3600), (long)(t / 60 % 60), (long)(t % 60));
  else std::snprintf(buf, sizeof(buf), "%ld:%02ld", (long)(t / 60), (long)(t % 60));
  return buf;
}

void Progress::update(int64_t step, const std::map<std::string, double>& metrics) {
  if (mode_ == Mode::None) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  double rate = step > start_ ? (step - start_) / std::max(elapsed, 1e-9) : 0.0;
  double eta = rate > 0 ? (total_ - step) / rate : NAN;
  std::ostringstream line;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "step %ld/%ld", (long)step, (long)total_);
  line << buf;
  for (const char* key : {"loss", "probe_acc", "lr"}) {
    auto it = metrics.find(key);
    if (it != metrics.end()) {
      std::snprintf(buf, sizeof(buf), " %s %.4g", key, it->second);
      line << buf;
    }
  }
  std::snprintf(buf, sizeof(buf), " | %.2f step/s, elapsed %s, eta %s", rate, duration_text(elapsed).c_str(),
                duration_text(eta).c_str());
  line << buf;
  if (mode_ == Mode::Bar) {
    int width = 24;
    int filled = total_ > 0 ? static_cast<int>(width * static_cast<double>(step) / total_) : 0;
    std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    std::cerr << "\r" << bar << line.str() << "\033[K" << std::flush;
    drawn_ = true;
  } else {
    std::cerr << line.str() << "\n";
  }
}

void Progress::finish() {
  if (drawn_) std::cerr << "\n";
  drawn_ = false;
}

}  // namespace sslab
