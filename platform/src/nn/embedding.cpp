#include "sslab/nn/embedding.h"

#include <cmath>

#include "sslab/error.h"

namespace sslab::nn {

// ---------------------------------------------------------------- patchify

torch::Tensor patchify(const torch::Tensor& images, int64_t p) {
  SSLAB_CHECK(images.dim() == 4, "patchify: expected images [B,C,H,W], got ", images.sizes());
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  SSLAB_CHECK(p > 0 && H % p == 0 && W % p == 0, "patchify: image size ", H, "x", W,
              " is not a multiple of the patch size ", p);
  const int64_t h = H / p, w = W / p;
  // [B,C,h,p,w,q] -> [B,h,w,p,q,C]
  return images.reshape({B, C, h, p, w, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, h * w, p * p * C});
}

torch::Tensor unpatchify(const torch::Tensor& patches, int64_t p, int64_t channels, int64_t grid_h) {
  SSLAB_CHECK(patches.dim() == 3 && patches.size(2) == p * p * channels, "unpatchify: expected patches [B,N,",
              p * p * channels, "], got ", patches.sizes());
  const int64_t B = patches.size(0), N = patches.size(1);
  int64_t h = grid_h;
  if (h == 0) {
    h = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
    SSLAB_CHECK(h * h == N, "unpatchify: ", N, " patches do not form a square grid");
  }
  SSLAB_CHECK(h > 0 && N % h == 0, "unpatchify: ", N, " patches do not fill ", h, " rows");
  const int64_t w = N / h;
  // [B,h,w,p,q,C] -> [B,C,h,p,w,q]
  return patches.reshape({B, h, w, p, p, channels}).permute({0, 5, 1, 3, 2, 4}).reshape({B, channels, h * p, w * p});
}

// ---------------------------------------------------------------- sin-cos

namespace {

// [positions.size(0), dim] in float64: sin block then cos block.
torch::Tensor sincos_1d(int64_t dim, const torch::Tensor& positions) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor omega = torch::arange(dim / 2, opts) / static_cast<double>(dim / 2);
  omega = 1.0 / torch::pow(10000.0, omega);
  torch::Tensor out = torch::outer(positions.to(torch::kFloat64).reshape({-1}), omega);
  return torch::cat({torch::sin(out), torch::cos(out)}, 1);
}

}  // namespace

torch::Tensor sincos_pos_embed_1d(int64_t dim, int64_t length) {
  SSLAB_CHECK(dim > 0 && dim % 2 == 0, "sin-cos positional embedding: dim must be even, got ", dim);
  return sincos_1d(dim, torch::arange(length, torch::kFloat64)).to(torch::kFloat32);
}

torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid_h, int64_t grid_w, bool cls_token) {
  SSLAB_CHECK(dim > 0 && dim % 4 == 0, "2-D sin-cos positional embedding: dim must be a multiple of 4, got ", dim);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  // Patch k = row * grid_w + col.
  torch::Tensor rows = torch::arange(grid_h, opts).view({grid_h, 1}).expand({grid_h, grid_w}).reshape({-1});
  torch::Tensor cols = torch::arange(grid_w, opts).view({1, grid_w}).expand({grid_h, grid_w}).reshape({-1});
  torch::Tensor emb = torch::cat({sincos_1d(dim / 2, cols), sincos_1d(dim / 2, rows)}, 1);
  if (cls_token) emb = torch::cat({torch::zeros({1, dim}, opts), emb}, 0);
  return emb.to(torch::kFloat32);
}

// ---------------------------------------------------------------- patch embedding

PatchEmbed2dImpl::PatchEmbed2dImpl(const PatchEmbed2dOptions& options_) : options(options_) { reset(); }

void PatchEmbed2dImpl::reset() {
  const int64_t s = options.image_size(), p = options.patch_size();
  SSLAB_CHECK(p > 0 && s > 0 && s % p == 0, "patch embedding: image_size (", s,
              ") must be a positive multiple of patch_size (", p, ")");
  SSLAB_CHECK(options.channels() > 0 && options.dim() > 0, "patch embedding: channels and dim must be > 0");
  proj = register_module("proj",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels(), options.dim(), p).stride(p)));
  reset_parameters();
}

void PatchEmbed2dImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(proj->weight.view({options.dim(), -1}));
  proj->bias.zero_();
}

torch::Tensor PatchEmbed2dImpl::forward(const torch::Tensor& images) {
  const int64_t s = options.image_size(), p = options.patch_size(), C = options.channels();
  SSLAB_CHECK(images.dim() == 4 && images.size(1) == C && images.size(2) == s && images.size(3) == s,
              "patch embedding: expected images [B,", C, ",", s, ",", s, "], got ", images.sizes());
  const int64_t B = images.size(0), g = s / p;
  // Unfold in the convolution's (C, p, q) order: [B,C,g,p,g,q] -> [B,g,g,C,p,q].
  torch::Tensor patches = images.reshape({B, C, g, p, g, p}).permute({0, 2, 4, 1, 3, 5}).reshape({B, g * g, C * p * p});
  return torch::linear(patches, proj->weight.view({options.dim(), C * p * p}), proj->bias);
}

// ---------------------------------------------------------------- learned positions

void trunc_normal_(torch::Tensor tensor, double std) {
  // Inverse-CDF sampling of the truncated normal (as torch.nn.init.trunc_normal_).
  torch::NoGradGuard no_grad;
  const double lo = std::erf(-2.0 / std::sqrt(2.0)), hi = std::erf(2.0 / std::sqrt(2.0));
  tensor.uniform_(lo, hi).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
}

LearnedPositionalEmbeddingImpl::LearnedPositionalEmbeddingImpl(const LearnedPositionalEmbeddingOptions& options_)
    : options(options_) {
  reset();
}

void LearnedPositionalEmbeddingImpl::reset() {
  SSLAB_CHECK(options.max_length() > 0 && options.dim() > 0,
              "learned positional embedding: max_length and dim must be > 0");
  weight = register_parameter("weight", torch::empty({options.max_length(), options.dim()}));
  reset_parameters();
}

void LearnedPositionalEmbeddingImpl::reset_parameters() { trunc_normal_(weight, options.init_std()); }

torch::Tensor LearnedPositionalEmbeddingImpl::forward(const torch::Tensor& x) {
  const int64_t T = x.size(-2);
  SSLAB_CHECK(T <= options.max_length(), "learned positional embedding: sequence of ", T, " is longer than max_length ",
              options.max_length());
  return x + weight.narrow(0, 0, T);
}

}  // namespace sslab::nn
