// Masked autoencoding (He et al. 2021, "Masked Autoencoders Are Scalable
// Vision Learners"): hide a random share of the patches of each image, encode
// only the visible ones with the ViT, decode all positions with a light
// transformer (mask tokens at the hidden ones) and regress the pixels of the
// hidden patches, normalised per patch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <sslab/components.h>
#include <sslab/nn/transformer.h>

#include "vit.h"

namespace sslab::vision {

// ---- the pieces, free of sslab so tests and benchmarks can use them alone

// Patches kept visible: round(num_patches * (1 - mask_ratio)).
int64_t num_visible(int64_t num_patches, double mask_ratio);

struct RandomMask {
  torch::Tensor ids_keep;     // [B, n_keep] int64: visible patches, in shuffled order
  torch::Tensor ids_restore;  // [B, N] int64: rank of each patch in the shuffled order
  torch::Tensor mask;         // [B, N] float32: 1 = masked (hidden from the encoder), 0 = visible
};

// Per-sample random masking as in MAE: argsort of uniform noise; each sample
// keeps exactly n_keep patches. Noise comes from `generator`, or torch's
// default generator when none is given (so torch::manual_seed fixes it).
RandomMask random_masking(int64_t batch, int64_t num_patches, int64_t n_keep, const torch::Device& device,
                          c10::optional<at::Generator> generator = c10::nullopt);

// MAE loss: mean over masked patches of the mean over a patch's values of
// (pred - target)^2, where target = patches, or with norm_pix each patch
// standardised as (x - mean) / sqrt(var + eps), var unbiased (as the reference
// implementation's torch.var). pred, patches [B,N,P]; mask [B,N], 1 = masked.
torch::Tensor mae_loss(const torch::Tensor& pred, const torch::Tensor& patches, const torch::Tensor& mask,
                       bool norm_pix, double eps = 1e-6);

// ---- the objective

struct MaeOptions {
  TORCH_ARG(double, mask_ratio) = 0.75;
  TORCH_ARG(int64_t, decoder_dim) = 128;
  TORCH_ARG(int64_t, decoder_depth) = 2;
  TORCH_ARG(int64_t, decoder_heads) = 4;
  TORCH_ARG(double, decoder_mlp_ratio) = 4.0;
  TORCH_ARG(bool, norm_pix_loss) = true;
};

// Own parameters (trained with the model; state dict names as in the MAE
// reference): decoder_embed, mask_token, decoder_blocks, decoder_norm,
// decoder_pred, and the fixed buffer decoder_pos_embed. The encoder is used,
// not owned: it is not a submodule.
class Mae : public Objective, public Illustrator {
 public:
  // `encoder` must be a Vit; otherwise a UserError naming `where`.
  Mae(std::shared_ptr<Encoder> encoder, const MaeOptions& options, const std::string& where = "");

  // loss = mae_loss on batch.at(encoder input); metrics "mse_masked" (the
  // loss) and "visible" (patches the encoder saw per image).
  ObjectiveOutput compute(const Batch& batch) override;

  // "reconstruction": up to 8 images of the batch in three rows: the image,
  // what the encoder saw (hidden patches grey), and the reconstruction (the
  // visible patches and the decoder's predictions, un-normalised with each
  // true patch's mean and variance when norm_pix_loss). A fixed mask seed,
  // so pictures from different steps show the same masks.
  std::map<std::string, torch::Tensor> pictures(const Batch& batch) override;

  struct Output {
    torch::Tensor loss;  // scalar
    torch::Tensor pred;  // [B, N, p*p*C] predicted patches (patchify order)
    torch::Tensor mask;  // [B, N] 1 = masked
  };
  // The whole step on images [B,C,H,W] with a fresh random mask.
  Output forward(const torch::Tensor& images);
  // ... or with a given mask.
  Output forward(const torch::Tensor& images, const RandomMask& mask);
  // latent [B, (1+)n_keep, dim] from Vit::forward_masked -> predictions [B, N, p*p*C].
  torch::Tensor forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore);

  int64_t num_visible() const { return n_keep_; }
  const MaeOptions& options() const { return options_; }
  const std::shared_ptr<Vit>& encoder() const { return encoder_; }

 private:
  std::shared_ptr<Vit> encoder_;
  MaeOptions options_;
  int64_t n_keep_;
  torch::nn::Linear decoder_embed_{nullptr};
  torch::Tensor mask_token_;               // [1,1,decoder_dim]
  torch::Tensor decoder_pos_embed_;        // [1, (1+)N, decoder_dim] buffer
  nn::TransformerStack decoder_{nullptr};  // registered as "decoder_blocks", "decoder_norm"
  torch::nn::Linear decoder_pred_{nullptr};
};

}  // namespace sslab::vision
