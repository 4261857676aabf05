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

}  // namespace

torch::Tensor load_image(const std::string& path, int64_t channels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, fs::exists(path) ? "cannot open image" : "no such file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw DataError(path, "cannot decode image: the file is empty");
  int w = 0, h = 0, file_channels = 0;
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
