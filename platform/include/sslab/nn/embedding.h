// Patch and positional embeddings shared by the modalities: 2-D patch
// embedding for images (and video frames), fixed sin-cos positional
// embeddings (1-D and the 2-D MAE variant), a learned positional embedding,
// and patchify/unpatchify helpers.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab::nn {

// ---- patchify / unpatchify

// images [B,C,H,W] -> patches [B, (H/p)*(W/p), p*p*C], patches in row-major
// order, each flattened as (row in patch, column in patch, channel) like MAE's
// patchify. H and W must be multiples of p.
SSLAB_API torch::Tensor patchify(const torch::Tensor& images, int64_t patch_size);
// The inverse: patches [B, h*w, p*p*C] -> images [B,C,h*p,w*p]; grid_h = h.
// With grid_h = 0 the grid is taken as square.
SSLAB_API torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch_size, int64_t channels,
                                   int64_t grid_h = 0);

// ---- fixed positional embeddings (float32, no batch dimension)

// [length, dim] sin-cos table: first dim/2 columns sin(pos * w_i), then
// cos(pos * w_i), with w_i = 1 / 10000^(i / (dim/2)). dim must be even.
SSLAB_API torch::Tensor sincos_pos_embed_1d(int64_t dim, int64_t length);
// [grid_h*grid_w (+1), dim], as MAE's get_2d_sincos_pos_embed: the first
// dim/2 columns encode the column (x) coordinate, the last dim/2 the row (y)
// coordinate, rows in row-major patch order. With cls_token a zero row is
// prepended. dim must be a multiple of 4.
SSLAB_API torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid_h, int64_t grid_w, bool cls_token = false);

// ---- 2-D patch embedding

struct PatchEmbed2dOptions {
  PatchEmbed2dOptions(int64_t image_size, int64_t patch_size, int64_t channels, int64_t dim)
      : image_size_(image_size), patch_size_(patch_size), channels_(channels), dim_(dim) {}
  TORCH_ARG(int64_t, image_size);  // square images of this side
  TORCH_ARG(int64_t, patch_size);  // a divisor of image_size
  TORCH_ARG(int64_t, channels);
  TORCH_ARG(int64_t, dim);
};

// Non-overlapping p x p patches -> dim, i.e. Conv2d(channels, dim, p, stride p),
// evaluated as one matrix product on the unfolded patches (faster on CPU than
// a strided convolution). Child: proj (a Conv2d, so state dicts read
// "proj.weight" [dim,C,p,p] as in timm/MAE). Weight init: xavier-uniform on
// the [dim, C*p*p] view, zero bias (MAE).
class SSLAB_API PatchEmbed2dImpl : public torch::nn::Cloneable<PatchEmbed2dImpl> {
 public:
  explicit PatchEmbed2dImpl(const PatchEmbed2dOptions& options);
  void reset() override;
  void reset_parameters();

  // images [B,C,H,W] -> tokens [B, num_patches, dim]; a wrong shape is a UserError.
  torch::Tensor forward(const torch::Tensor& images);

  int64_t grid_size() const { return options.image_size() / options.patch_size(); }
  int64_t num_patches() const { return grid_size() * grid_size(); }

  PatchEmbed2dOptions options;
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed2d);

// ---- learned positional embedding

struct LearnedPositionalEmbeddingOptions {
  LearnedPositionalEmbeddingOptions(int64_t max_length, int64_t dim) : max_length_(max_length), dim_(dim) {}
  TORCH_ARG(int64_t, max_length);
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, init_std) = 0.02;  // normal init, truncated at 2 std
};

// x [B,T,dim] -> x + weight[:T]. Parameter: weight [max_length, dim].
class SSLAB_API LearnedPositionalEmbeddingImpl : public torch::nn::Cloneable<LearnedPositionalEmbeddingImpl> {
 public:
  explicit LearnedPositionalEmbeddingImpl(const LearnedPositionalEmbeddingOptions& options);
  void reset() override;
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x);

  LearnedPositionalEmbeddingOptions options;
  torch::Tensor weight;
};
TORCH_MODULE(LearnedPositionalEmbedding);

// In-place normal(0, std) truncated to [-2 std, 2 std] (inverse-CDF sampling).
SSLAB_API void trunc_normal_(torch::Tensor tensor, double std = 0.02);

}  // namespace sslab::nn
