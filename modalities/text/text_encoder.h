// The text.transformer encoder: token embeddings plus learned positional
// embeddings, pre-norm transformer blocks with a key padding mask (the
// shared sslab/nn blocks) and a final LayerNorm, pooled by the mean over real
// tokens or the first ([CLS]) token. State dict names: token_embed.weight,
// pos_embed.weight, blocks.<i>..., norm.weight.
#pragma once

#include <cstdint>
#include <string>

#include <sslab/components.h>
#include <sslab/nn/embedding.h>
#include <sslab/nn/transformer.h>

namespace sslab::text {

struct TextTransformerOptions {
  TORCH_ARG(int64_t, vocab_size) = 8000;
  TORCH_ARG(int64_t, max_length) = 128;
  TORCH_ARG(int64_t, dim) = 128;
  TORCH_ARG(int64_t, depth) = 2;
  TORCH_ARG(int64_t, heads) = 4;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(std::string, pool) = "mean";  // mean over real tokens, or cls (the first token)
};

class TextTransformer : public Encoder {
 public:
  explicit TextTransformer(const TextTransformerOptions& options);

  // Pooled tokens of batch.at(input()), padding from "<input>.mask": [B, dim].
  torch::Tensor embed(const Batch& batch) override;
  int64_t embed_dim() const override { return options_.dim(); }

  // ids [B,T] int64, padding_mask [B,T] bool (true = padding) or undefined
  // -> final-norm tokens [B,T,dim].
  torch::Tensor forward_tokens(const torch::Tensor& ids, const torch::Tensor& padding_mask = {});
  torch::Tensor pool(const torch::Tensor& tokens, const torch::Tensor& padding_mask) const;
  // The padding mask of the batch's input (true = padding), or undefined
  // when the batch has no "<input>.mask" (all samples of one length).
  torch::Tensor padding_mask(const Batch& batch) const;

  // The token embedding matrix [vocab_size, dim] (tied to the MLM output).
  const torch::Tensor& token_embedding() const { return token_embed_->weight; }
  const TextTransformerOptions& options() const { return options_; }

 private:
  TextTransformerOptions options_;
  torch::nn::Embedding token_embed_{nullptr};
  nn::LearnedPositionalEmbedding pos_embed_{nullptr};
  nn::TransformerStack stack_{nullptr};  // its blocks and norm are registered here as "blocks", "norm"
};

}  // namespace sslab::text
