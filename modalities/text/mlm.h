// Masked language modelling (Devlin et al. 2018, BERT): choose 15% of the
// real tokens; of those, 80% become [MASK], 10% a random token, 10% stay;
// predict the originals through a head tied to the encoder's token embedding
// (dense -> GELU -> LayerNorm -> embedding^T + bias).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <sslab/components.h>

#include "text_encoder.h"

namespace sslab::text {

// ---- masking, free of the objective so tests can check it alone

struct MlmMaskOptions {
  TORCH_ARG(double, mask_prob) = 0.15;         // share of real tokens chosen
  TORCH_ARG(double, mask_token_prob) = 0.8;    // of the chosen: replaced by [MASK]
  TORCH_ARG(double, random_token_prob) = 0.1;  // of the chosen: replaced by a random ordinary token
};

struct MlmMask {
  torch::Tensor inputs;    // [B,T] ids with the replacements
  torch::Tensor labels;    // [B,T] original id at chosen positions, -100 elsewhere
  torch::Tensor selected;  // [B,T] bool: chosen for prediction
};

// ids [B,T] int64; protected_ [B,T] bool marks positions never chosen
// (special tokens and padding); ordinary_ids [K] int64 are the ids a random
// replacement draws from. Draws from `generator`, or torch's default one.
MlmMask mlm_mask(const torch::Tensor& ids, const torch::Tensor& protected_, int64_t mask_id,
                 const torch::Tensor& ordinary_ids, const MlmMaskOptions& options,
                 c10::optional<at::Generator> generator = c10::nullopt);

// ---- the objective

class Mlm : public Objective {
 public:
  // `encoder` must be a TextTransformer; special_ids are never chosen nor
  // drawn as random replacements; mask_id is [MASK].
  Mlm(std::shared_ptr<Encoder> encoder, std::vector<int64_t> special_ids, int64_t mask_id,
      const MlmMaskOptions& options, const std::string& where = "");

  // Loss on a fresh mask; metrics masked_accuracy, perplexity (exp of the
  // loss), masked (chosen tokens per sample).
  ObjectiveOutput compute(const Batch& batch) override;

  struct Output {
    torch::Tensor loss;     // mean cross-entropy over chosen tokens
    torch::Tensor logits;   // [N, V] at the chosen positions
    torch::Tensor targets;  // [N]
    double accuracy = 0;    // share of chosen tokens predicted right
    int64_t chosen = 0;
  };
  // padding_mask [B,T] (true = padding) or undefined.
  Output forward(const torch::Tensor& ids, const torch::Tensor& padding_mask);
  Output forward(const MlmMask& mask, const torch::Tensor& padding_mask);
  // Logits [.., V] of encoder tokens [.., dim] through the tied head.
  torch::Tensor head(const torch::Tensor& tokens);
  // Positions never chosen: special ids or padding.
  torch::Tensor protected_positions(const torch::Tensor& ids, const torch::Tensor& padding_mask) const;

  const std::shared_ptr<TextTransformer>& encoder() const { return encoder_; }
  torch::nn::Linear& transform() { return transform_; }
  torch::nn::LayerNorm& transform_norm() { return transform_norm_; }
  const torch::Tensor& output_bias() const { return bias_; }

 private:
  std::shared_ptr<TextTransformer> encoder_;
  torch::Tensor special_ids_;   // [S] int64
  torch::Tensor ordinary_ids_;  // [K] int64
  int64_t mask_id_;
  MlmMaskOptions options_;
  torch::nn::Linear transform_{nullptr};
  torch::nn::LayerNorm transform_norm_{nullptr};
  torch::Tensor bias_;  // [V]
};

}  // namespace sslab::text
