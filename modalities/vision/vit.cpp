#include "vit.h"

#include <sslab/nn/pooling.h>

namespace sslab::vision {

Vit::Vit(const VitOptions& options) : options_(options) {
  SSLAB_CHECK(options_.pool() == "mean" || options_.pool() == "cls" || options_.pool() == "grid",
              "vit: pool must be 'mean', 'cls' or 'grid', got '",
              options_.pool(), "'");
  SSLAB_CHECK(options_.dim() % 4 == 0, "vit: dim must be a multiple of 4 (2-D sin-cos positions), got ",
              options_.dim());
  SSLAB_CHECK(options_.dim() % options_.heads() == 0, "vit: dim (", options_.dim(), ") must be a multiple of heads (",
              options_.heads(), ")");
  const bool cls = options_.cls_token() || options_.pool() == "cls";
  patch_embed_ = register_module("patch_embed",
                                 nn::PatchEmbed2d(nn::PatchEmbed2dOptions(options_.image_size(), options_.patch_size(),
                                                                          options_.channels(), options_.dim())));
  if (cls) {
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, options_.dim()}));
    torch::NoGradGuard no_grad;
    cls_token_.normal_(0.0, 0.02);
  }
  const int64_t grid = patch_embed_->grid_size();
  pos_embed_ = register_buffer("pos_embed", nn::sincos_pos_embed_2d(options_.dim(), grid, grid, cls).unsqueeze(0));
  stack_ = nn::TransformerStack(
      nn::TransformerStackOptions(options_.dim(), options_.depth(), options_.heads()).mlp_ratio(options_.mlp_ratio()));
  register_module("blocks", stack_->blocks);
  register_module("norm", stack_->norm);
}

torch::Tensor Vit::embed_patches(const torch::Tensor& images) {
  torch::Tensor pos = has_cls_token() ? pos_embed_.narrow(1, 1, num_patches()) : pos_embed_;
  return patch_embed_(images) + pos;
}

torch::Tensor Vit::encode(torch::Tensor tokens) {
  if (has_cls_token()) {
    torch::Tensor cls = (cls_token_ + pos_embed_.narrow(1, 0, 1)).expand({tokens.size(0), 1, options_.dim()});
    tokens = torch::cat({cls, tokens}, 1);
  }
  return stack_(tokens);
}

torch::Tensor Vit::forward_tokens(const torch::Tensor& images) { return encode(embed_patches(images)); }

torch::Tensor Vit::forward_masked(const torch::Tensor& images, const torch::Tensor& ids_keep) {
  SSLAB_CHECK(ids_keep.dim() == 2 && ids_keep.size(0) == images.size(0),
              "vit: ids_keep must be [B, n_keep] with B = ", images.size(0), ", got ", ids_keep.sizes());
  torch::Tensor x = embed_patches(images);
  torch::Tensor index = ids_keep.to(torch::kInt64).unsqueeze(-1).expand({-1, -1, options_.dim()});
  return encode(torch::gather(x, 1, index));
}

torch::Tensor Vit::pool(const torch::Tensor& tokens) const {
  if (options_.pool() == "cls") return nn::cls_pool(tokens);
  torch::Tensor patches = has_cls_token() ? tokens.narrow(1, 1, tokens.size(1) - 1) : tokens;
  if (options_.pool() == "grid") {
    // Means of the patch tokens in each cell of a 2x2 grid over the image,
    // concatenated: [B, 4 * dim]. Keeps coarse layout that a global mean loses.
    const int64_t g = patch_embed_->grid_size(), B = patches.size(0), D = patches.size(2);
    torch::Tensor map = patches.transpose(1, 2).reshape({B, D, g, g});
    return torch::adaptive_avg_pool2d(map, {2, 2}).reshape({B, D * 4});
  }
  return patches.mean(1);
}

torch::Tensor Vit::embed(const Batch& batch) { return pool(forward_tokens(batch.at(input()))); }

}  // namespace sslab::vision
