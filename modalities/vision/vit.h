// The Vision Transformer encoder (Dosovitskiy et al. 2020) in its MAE form:
// patch embedding, fixed 2-D sin-cos positional embedding, optional [CLS]
// token, pre-norm blocks and a final LayerNorm, built from sslab/nn. State
// dict names follow the MAE reference: patch_embed.proj.weight, cls_token,
// pos_embed (a buffer), blocks.<i>.attn.qkv.weight, ..., norm.weight.
#pragma once

#include <cstdint>
#include <string>

#include <sslab/components.h>
#include <sslab/nn/embedding.h>
#include <sslab/nn/transformer.h>

namespace sslab::vision {

struct VitOptions {
  TORCH_ARG(int64_t, image_size) = 28;
  TORCH_ARG(int64_t, patch_size) = 4;
  TORCH_ARG(int64_t, channels) = 1;
  TORCH_ARG(int64_t, dim) = 192;
  TORCH_ARG(int64_t, depth) = 6;
  TORCH_ARG(int64_t, heads) = 3;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(std::string, pool) = "mean";  // "mean" over patch tokens, "cls", or "grid" (2x2 cell means)
  TORCH_ARG(bool, cls_token) = false;     // implied by pool = "cls"
};

class Vit : public Encoder {
 public:
  explicit Vit(const VitOptions& options);

  // Pooled final-norm tokens of batch.at(input()), no masking: [B, dim].
  torch::Tensor embed(const Batch& batch) override;
  int64_t embed_dim() const override { return options_.pool() == "grid" ? 4 * options_.dim() : options_.dim(); }

  // images [B,C,H,W] -> all tokens after the final norm: [B, T, dim] with
  // T = num_patches (+1, the [CLS] token first, when has_cls_token()).
  torch::Tensor forward_tokens(const torch::Tensor& images);
  // Encodes only the patches ids_keep [B, n_keep] (int64, indices into the
  // row-major patch grid): [B, n_keep (+1), dim] after the final norm, the
  // visible tokens in the order of ids_keep (after the [CLS] token).
  torch::Tensor forward_masked(const torch::Tensor& images, const torch::Tensor& ids_keep);
  // Pools tokens from forward_tokens(): mean of the patch tokens, or [CLS].
  torch::Tensor pool(const torch::Tensor& tokens) const;

  const VitOptions& options() const { return options_; }
  int64_t num_patches() const { return patch_embed_->num_patches(); }
  int64_t patch_size() const { return options_.patch_size(); }
  int64_t channels() const { return options_.channels(); }
  bool has_cls_token() const { return cls_token_.defined(); }

 private:
  // Patch embeddings plus their positional embeddings: [B, N, dim].
  torch::Tensor embed_patches(const torch::Tensor& images);
  // Prepends [CLS] (when present), runs the blocks and the final norm.
  torch::Tensor encode(torch::Tensor tokens);

  VitOptions options_;
  nn::PatchEmbed2d patch_embed_{nullptr};
  torch::Tensor cls_token_;              // [1,1,dim] parameter, or undefined
  torch::Tensor pos_embed_;              // [1, (1+)N, dim] buffer (fixed sin-cos; zeros for [CLS])
  nn::TransformerStack stack_{nullptr};  // its blocks and norm are registered here as "blocks", "norm"
};

}  // namespace sslab::vision
