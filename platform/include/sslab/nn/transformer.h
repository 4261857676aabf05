// Transformer building blocks shared by every modality: multi-head
// self-attention with a key padding mask, the pre-norm block and a stack of
// blocks. Modules follow the LibTorch pattern (options with TORCH_ARG, FooImpl,
// TORCH_MODULE(Foo)); parameter names match timm/MAE so state dicts read
// "blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.bias", "norm.weight".
//
// Linear weights are initialised xavier-uniform with zero biases and layer
// norms to (1, 0), as in the ViT/MAE reference implementations.
//
// Padding masks are [B,T] bool with true = padding (that position is ignored
// as a key); an undefined tensor means no padding.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab::nn {

// ---- multi-head self-attention

struct MultiheadSelfAttentionOptions {
  MultiheadSelfAttentionOptions(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {}
  TORCH_ARG(int64_t, dim);    // model width; a multiple of heads
  TORCH_ARG(int64_t, heads);  // attention heads
  TORCH_ARG(bool, qkv_bias) = true;
};

// softmax(Q K^T / sqrt(d)) V over all heads at once (batched matmuls on
// [B,H,T,D/H]), then an output projection. Children: qkv (dim -> 3 dim),
// proj (dim -> dim).
class SSLAB_API MultiheadSelfAttentionImpl : public torch::nn::Cloneable<MultiheadSelfAttentionImpl> {
 public:
  explicit MultiheadSelfAttentionImpl(const MultiheadSelfAttentionOptions& options);
  MultiheadSelfAttentionImpl(int64_t dim, int64_t heads)
      : MultiheadSelfAttentionImpl(MultiheadSelfAttentionOptions(dim, heads)) {}

  void reset() override;
  void reset_parameters();

  // x [B,T,dim] -> [B,T,dim]. key_padding_mask [B,T] bool (true = pad) or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask = {});

  MultiheadSelfAttentionOptions options;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(MultiheadSelfAttention);

// ---- feed-forward (the block's MLP)

struct FeedForwardOptions {
  FeedForwardOptions(int64_t dim, int64_t hidden) : dim_(dim), hidden_(hidden) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, hidden);
};

// fc1 (dim -> hidden), GELU, fc2 (hidden -> dim).
class SSLAB_API FeedForwardImpl : public torch::nn::Cloneable<FeedForwardImpl> {
 public:
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  void reset() override;
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& x);

  FeedForwardOptions options;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(FeedForward);

// ---- pre-norm transformer block

struct TransformerBlockOptions {
  TransformerBlockOptions(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(double, mlp_ratio) = 4.0;  // MLP hidden width = round(dim * mlp_ratio)
  TORCH_ARG(bool, qkv_bias) = true;
  TORCH_ARG(double, norm_eps) = 1e-6;  // LayerNorm epsilon (MAE/timm use 1e-6)
};

// x = x + attn(norm1(x), mask); x = x + mlp(norm2(x)).
// Children: norm1, attn, norm2, mlp.
class SSLAB_API TransformerBlockImpl : public torch::nn::Cloneable<TransformerBlockImpl> {
 public:
  explicit TransformerBlockImpl(const TransformerBlockOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask = {});

  TransformerBlockOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MultiheadSelfAttention attn{nullptr};
  FeedForward mlp{nullptr};
};
TORCH_MODULE(TransformerBlock);

// ---- a stack of blocks with a final norm

struct TransformerStackOptions {
  TransformerStackOptions(int64_t dim, int64_t depth, int64_t heads) : dim_(dim), depth_(depth), heads_(heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, depth);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(bool, qkv_bias) = true;
  TORCH_ARG(double, norm_eps) = 1e-6;
  TORCH_ARG(bool, final_norm) = true;  // a LayerNorm after the last block
};

// depth TransformerBlocks, then (optionally) a LayerNorm. Children: blocks
// (ModuleList), norm. A model that wants these names at its own top level
// (ViT: "blocks.0...", "norm.weight") registers `blocks` and `norm` itself
// and keeps the stack unregistered, only to call forward().
class SSLAB_API TransformerStackImpl : public torch::nn::Cloneable<TransformerStackImpl> {
 public:
  explicit TransformerStackImpl(const TransformerStackOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask = {});

  TransformerStackOptions options;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};  // null when !final_norm
};
TORCH_MODULE(TransformerStack);

}  // namespace sslab::nn
