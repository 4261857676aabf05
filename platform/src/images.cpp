#include "sslab/images.h"

#include "sslab/error.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace sslab {

namespace {
void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
}  // namespace

std::string encode_png(const torch::Tensor& image_in) {
  torch::Tensor image = image_in.detach().to(torch::kCPU, torch::kFloat32);
  if (image.dim() == 2) image = image.unsqueeze(0);
  SSLAB_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) && image.size(1) > 0 && image.size(2) > 0,
              "encode_png: expected an image [1 or 3, H, W], got ", image_in.sizes());
  SSLAB_CHECK(image.size(1) <= 16384 && image.size(2) <= 16384, "encode_png: ", image.sizes(), " is too large");
  const int c = static_cast<int>(image.size(0)), h = static_cast<int>(image.size(1)), w = static_cast<int>(image.size(2));
  torch::Tensor bytes = (image.nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  std::string out;
  const int ok = stbi_write_png_to_func(append, &out, w, h, c, bytes.data_ptr(), w * c);
  SSLAB_CHECK(ok != 0, "encode_png: the PNG encoder failed");
  return out;
}

torch::Tensor image_grid(const torch::Tensor& images, int64_t columns, int64_t pad, double background) {
  SSLAB_CHECK(images.dim() == 4 && images.size(0) > 0, "image_grid: expected images [N, C, H, W], got ", images.sizes());
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  columns = std::max<int64_t>(1, std::min(columns, n));
  const int64_t rows = (n + columns - 1) / columns;
  torch::Tensor grid = torch::full({c, rows * (h + pad) + pad, columns * (w + pad) + pad}, background,
                                   torch::TensorOptions().dtype(torch::kFloat32));
  torch::Tensor src = images.detach().to(torch::kCPU, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / columns, col = i % columns;
    grid.narrow(1, pad + r * (h + pad), h).narrow(2, pad + col * (w + pad), w).copy_(src[i]);
  }
  return grid;
}

}  // namespace sslab
