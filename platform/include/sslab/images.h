// Pictures (SDK): PNG encoding and image grids (TensorBoard image summaries, the
// run's images/ folder, `sslab report`, the projector's sprite).
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {

// image [C, H, W] (C = 1 or 3) or [H, W], values in [0, 1] (clamped), any
// dtype and device -> the bytes of an 8-bit PNG file. UserError for another shape.
SSLAB_API std::string encode_png(const torch::Tensor& image);

// images [N, C, H, W] -> one image [C, rows * (H + pad) + pad, columns * (W + pad) + pad]
// with the images row by row on a background of `background`.
SSLAB_API torch::Tensor image_grid(const torch::Tensor& images, int64_t columns, int64_t pad = 2,
                                   double background = 1.0);

}  // namespace sslab
