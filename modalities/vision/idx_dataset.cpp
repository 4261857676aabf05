#include "idx_dataset.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>
#include <filesystem>

#include <zlib.h>

namespace sslab::vision {

namespace fs = std::filesystem;

namespace {

// A gzFile that closes itself.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw DataError(path, fs::exists(path) ? "cannot open (permission denied?)" : "no such file");
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read. Corrupt compressed data
  // is a DataError (a truncated gzip stream included).
  int64_t read(void* out, int64_t n) {
    auto* p = static_cast<unsigned char*>(out);
    int64_t total = 0;
    while (total < n) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(n - total, int64_t{1} << 30));
      const int got = gzread(file_, p + total, chunk);
      if (got < 0 || (got == 0 && !gzeof(file_))) fail();
      if (got == 0) break;
      total += got;
    }
    // zlib reports a gzip stream cut short only through gzerror.
    int err = Z_OK;
    gzerror(file_, &err);
    if (err != Z_OK && err != Z_STREAM_END) fail();
    return total;
  }

 private:
  [[noreturn]] void fail() {
    int err = Z_OK;
    const char* msg = gzerror(file_, &err);
    throw DataError(path_, str("truncated or corrupt gzip data (zlib: ", msg ? msg : "unknown error", ")"));
  }
  std::string path_;
  gzFile file_;
};

int64_t big_endian(const unsigned char* b) {
  return (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_dims) {
  GzReader in(path);
  unsigned char magic[4];
  int64_t got = in.read(magic, 4);
  if (got < 4)
    throw DataError(path, str("not an IDX file: only ", got, " bytes, too short for the 4-byte magic number"));
  const int64_t header_bytes = 4 + 4 * int64_t{expected_dims};
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != expected_dims) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%02X%02X%02X%02X", magic[0], magic[1], magic[2], magic[3]);
    throw DataError(path, str("wrong magic number ", hex, ": expected 0x000008", expected_dims < 16 ? "0" : "",
                              expected_dims, " (IDX file of unsigned bytes with ", expected_dims, " dimensions)"));
  }
  IdxArray out;
  int64_t count = 1;
  for (int i = 0; i < expected_dims; ++i) {
    unsigned char b[4];
    got = in.read(b, 4);
    if (got < 4)
      throw DataError(path,
                      str("truncated header: expected ", header_bytes, " bytes of header, got ", 4 + 4 * i + got));
    const int64_t d = big_endian(b);
    if (d <= 0) throw DataError(path, str("dimension ", i, " of the header is ", d, ", must be > 0"));
    out.dims.push_back(d);
    // Dimensions are at most 2^31 - 1 each; three can overflow int64.
    if (count > (int64_t{1} << 50) / d)
      throw DataError(path, str("the header's dimensions ", dims_text(out.dims), " exceed the 1 PiB an IDX file may hold"));
    count *= d;
  }
  const int64_t expected = header_bytes + count;
  // What is allocated is bounded by what the file holds, not by what its
  // header claims: read in chunks and allocate as data arrives.
  std::vector<uint8_t> bytes;
  constexpr int64_t kChunk = int64_t{16} << 20;
  got = 0;
  while (got < count) {
    const int64_t want = std::min(kChunk, count - got);
    bytes.resize(static_cast<size_t>(got + want));
    const int64_t n = in.read(bytes.data() + got, want);
    got += n;
    if (n < want) break;
  }
  bytes.resize(static_cast<size_t>(got));
  unsigned char extra;
  if (got < count || in.read(&extra, 1) != 0) {
    const int64_t actual = header_bytes + got + (got < count ? 0 : 1);
    throw DataError(path, str(got < count ? "truncated" : "too long", ": expected ", expected, " bytes (", header_bytes,
                              "-byte header + ", dims_text(out.dims), " bytes of data), got ", actual,
                              got < count ? "" : " or more"));
  }
  out.data = torch::empty(out.dims, torch::kUInt8);
  std::memcpy(out.data.data_ptr<uint8_t>(), bytes.data(), static_cast<size_t>(count));
  return out;
}

std::string find_idx_file(const std::string& folder, const std::string& name) {
  const fs::path plain = fs::path(folder) / name;
  if (fs::exists(plain)) return plain.string();
  const fs::path gz = fs::path(folder) / (name + ".gz");
  if (fs::exists(gz)) return gz.string();
  throw DataError(plain.string(), str("missing IDX file: neither ", plain.string(), " nor ", gz.string(), " exists"));
}

FashionMnist::FashionMnist(const std::string& root, const std::string& split) {
  SSLAB_CHECK(split == "train" || split == "test", "fashion_mnist: split must be 'train' or 'test', got '", split, "'");
  SSLAB_CHECK(fs::is_directory(root), "fashion_mnist: root folder '", root,
              "' does not exist (install the Debian package dataset-fashion-mnist or set root)");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string image_file = find_idx_file(root, prefix + "-images-idx3-ubyte");
  const std::string label_file = find_idx_file(root, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx(image_file, 3);
  IdxArray labels = read_idx(label_file, 1);
  if (labels.dims[0] != images.dims[0])
    throw DataError(label_file,
                    str("holds ", labels.dims[0], " labels but ", image_file, " holds ", images.dims[0], " images"));
  const int64_t max_label = labels.data.max().item<int64_t>();
  if (max_label >= num_classes())
    throw DataError(label_file,
                    str("label ", max_label, " out of range: Fashion-MNIST has ", num_classes(), " classes"));
  images_ = images.data;
  labels_ = labels.data.to(torch::kInt64);
}

Sample FashionMnist::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "fashion_mnist: index ", index, " out of range [0, ", size(), ")");
  torch::Tensor image = images_[index].to(torch::kFloat32).div_(255.0).unsqueeze(0);
  return {{"image", image}, {"label", labels_[index].clone()}};
}

}  // namespace sslab::vision
