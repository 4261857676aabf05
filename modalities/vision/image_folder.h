// Images in class sub-folders: root/<class>/<image>.(png|jpg|jpeg|bmp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::vision {

struct ImageFolderOptions {
  std::string root;       // root/<class>/<image>
  int64_t channels = 3;   // 1 (grey) or 3 (RGB)
  int64_t size = 0;       // resize to size x size (0: as decoded)
};

// Labels are the indices of the sorted sub-folder names. Files are listed at
// construction (sorted, so indices are stable) and decoded in get() with
// stb_image; an unreadable or corrupt image is a DataError naming the file.
// "image" float32 [channels, size, size] in [0,1] (size 0: as decoded),
// "label" int64 [].
class ImageFolder : public Dataset {
 public:
  ImageFolder(const std::string& root, int64_t channels, int64_t size);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& file(int64_t index) const { return files_.at(static_cast<size_t>(index)); }

 private:
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  int64_t channels_, size_;
};

// The most pixels an image may have (8192 x 4096): stb_image allocates the
// whole image from the header's size before decoding, so a header that lies
// must not drive that allocation (a 100-byte BMP can claim 17160 x 12032).
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 25;

// Decodes one PNG, JPEG or BMP file (recognised by content) of at most
// kMaxImagePixels to float32 [channels,H,W] in [0,1]; DataError on failure,
// for other formats and for larger images.
torch::Tensor load_image(const std::string& path, int64_t channels);

}  // namespace sslab::vision
