// Pooling token sequences [B,T,D] into one vector per sample [B,D].
// Padding masks are [B,T] bool with true = padding, as in sslab/nn/transformer.h.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "sslab/error.h"

namespace sslab::nn {

// Mean over the tokens that are not padding (all tokens when the mask is
// undefined). A sample whose tokens are all padding pools to zeros.
inline torch::Tensor mean_pool(const torch::Tensor& tokens, const torch::Tensor& padding_mask = {}) {
  SSLAB_CHECK(tokens.dim() == 3, "mean_pool: expected tokens [B,T,D], got ", tokens.sizes());
  if (!padding_mask.defined()) return tokens.mean(1);
  SSLAB_CHECK(
      padding_mask.dim() == 2 && padding_mask.size(0) == tokens.size(0) && padding_mask.size(1) == tokens.size(1),
      "mean_pool: padding mask must be [", tokens.size(0), ",", tokens.size(1), "], got ", padding_mask.sizes());
  torch::Tensor keep = padding_mask.logical_not().to(tokens.scalar_type()).unsqueeze(-1);  // [B,T,1]
  return (tokens * keep).sum(1) / keep.sum(1).clamp_min(1.0);
}

// The first token (a [CLS] token prepended by the encoder).
inline torch::Tensor cls_pool(const torch::Tensor& tokens) {
  SSLAB_CHECK(tokens.dim() == 3 && tokens.size(1) > 0, "cls_pool: expected tokens [B,T,D], got ", tokens.sizes());
  return tokens.select(1, 0);
}

}  // namespace sslab::nn
