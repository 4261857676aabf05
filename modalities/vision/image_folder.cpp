#include "image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include <stb/stb_image.h>  // implementation in libstb.so

namespace sslab::vision {

namespace fs = std::filesystem;

namespace {

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The format by content: PNG, JPEG or BMP, the formats an image folder lists
// ("" for anything else).
const char* sniff_format(const std::vector<unsigned char>& b) {
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::equal(png, png + 8, b.begin())) return "PNG";
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "JPEG";
  if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
  return "";
}

// What stb_image 2.27 (Debian's) does not check in a JPEG: a Huffman table
// (DHT segment) declaring more than 256 codes overruns its arrays. Walks the
// segments (and the entropy-coded data between scans); "" when every table
// fits, else why not.
std::string check_jpeg_tables(const std::vector<unsigned char>& b) {
  size_t pos = 2;  // after SOI
  while (pos + 1 < b.size()) {
    if (b[pos] != 0xff) {  // entropy-coded data: skip to the next marker
      ++pos;
      continue;
    }
    const unsigned char m = b[pos + 1];
    if (m == 0x00 || m == 0xff || (m >= 0xd0 && m <= 0xd7) || m == 0x01) {  // stuffing, fill, RSTn, TEM
      pos += m == 0xff ? 1 : 2;
      continue;
    }
    if (m == 0xd9) return "";            // EOI
    if (pos + 3 >= b.size()) return "";  // truncated: stb_image reports it
    const size_t length = (size_t{b[pos + 2]} << 8) | b[pos + 3];
    if (length < 2) return "a segment shorter than its length field";
    const size_t end = std::min(b.size(), pos + 2 + length);
    if (m == 0xc4) {
      for (size_t t = pos + 4; t < end;) {
        if (t + 17 > end) return "a Huffman table cut short";
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += b[t + i];
        if (codes > 256) return str("a Huffman table declaring ", codes, " codes (at most 256)");
        t += 17 + codes;
      }
    }
    pos = end;
  }
  return "";
}

// What stb_image 2.27 does not check in a PNG: it grows its buffer for the
// compressed data to an IDAT chunk's declared length before reading the
// chunk, so a 100-byte file can make it allocate 2 GB. Every chunk (its
// data and CRC) must fit in the file; "" when they do, else why not.
std::string check_png_chunks(const std::vector<unsigned char>& b) {
  size_t pos = 8;  // after the signature
  while (pos + 8 <= b.size()) {
    const uint64_t length =
        (uint64_t{b[pos]} << 24) | (uint64_t{b[pos + 1]} << 16) | (uint64_t{b[pos + 2]} << 8) | b[pos + 3];
    const uint64_t room = b.size() - pos - 8;
    if (length + 4 > room) return str("a chunk declaring ", length, " bytes where the file holds ", room);
    if (std::equal(b.begin() + static_cast<std::ptrdiff_t>(pos + 4), b.begin() + static_cast<std::ptrdiff_t>(pos + 8),
                   "IEND"))
      return "";
    pos += 12 + static_cast<size_t>(length);
  }
  return "";
}

}  // namespace

torch::Tensor load_image(const std::string& path, int64_t channels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, fs::exists(path) ? "cannot open image" : "no such file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw DataError(path, "cannot decode image: the file is empty");
  // stb_image reads a dozen formats, some with known memory-safety bugs in
  // Debian's copy: only the formats an image folder lists are decoded.
  const std::string format = sniff_format(bytes);
  if (format.empty()) throw DataError(path, "cannot decode image: not a PNG, JPEG or BMP file");
  const std::string bad = format == "JPEG" ? check_jpeg_tables(bytes) : format == "PNG" ? check_png_chunks(bytes) : "";
  if (!bad.empty()) throw DataError(path, str("cannot decode image: corrupt ", format, " (", bad, ")"));
  int w = 0, h = 0, file_channels = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &file_channels)) {
    const char* why = stbi_failure_reason();
    throw DataError(path, str("cannot decode image (", why ? why : "unknown reason", ")"));
  }
  if (int64_t{w} * h > kMaxImagePixels)
    throw DataError(path, str("cannot decode image: ", w, "x", h, " pixels, more than the ", kMaxImagePixels,
                              " an image may have"));
  unsigned char* pixels = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &file_channels,
                                                static_cast<int>(channels));
  if (!pixels) {
    const char* why = stbi_failure_reason();
    throw DataError(path, str("cannot decode image (", why ? why : "unknown reason", ")"));
  }
  torch::Tensor image;
  try {
    image =
        torch::from_blob(pixels, {h, w, channels}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat32).div_(255.0);
  } catch (...) {
    stbi_image_free(pixels);
    throw;
  }
  stbi_image_free(pixels);
  return image.contiguous();
}

ImageFolder::ImageFolder(const std::string& root, int64_t channels, int64_t size) : channels_(channels), size_(size) {
  SSLAB_CHECK(channels == 1 || channels == 3, "image_folder: channels must be 1 or 3, got ", channels);
  SSLAB_CHECK(size >= 0, "image_folder: size must be >= 0, got ", size);
  SSLAB_CHECK(fs::is_directory(root), "image_folder: root folder '", root, "' does not exist");
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  SSLAB_CHECK(!classes_.empty(), "image_folder: '", root, "' has no class sub-folders (expected root/<class>/<image>)");
  for (size_t label = 0; label < classes_.size(); ++label) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(root) / classes_[label]))
      if (entry.is_regular_file() && is_image(entry.path())) files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(label));
    }
  }
  SSLAB_CHECK(!files_.empty(), "image_folder: no .png/.jpg/.jpeg/.bmp images under '", root, "'");
}

Sample ImageFolder::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "image_folder: index ", index, " out of range [0, ", size(), ")");
  torch::Tensor image = load_image(files_[static_cast<size_t>(index)], channels_);
  if (size_ > 0 && (image.size(1) != size_ || image.size(2) != size_)) {
    namespace F = torch::nn::functional;
    image = F::interpolate(image.unsqueeze(0), F::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{size_, size_})
                                                   .mode(torch::kBilinear)
                                                   .align_corners(false))
                .squeeze(0)
                .clamp_(0.0, 1.0);
  }
  return {{"image", image}, {"label", torch::tensor(labels_[static_cast<size_t>(index)], torch::kInt64)}};
}

}  // namespace sslab::vision
