#include "text_encoder.h"

#include <sslab/nn/pooling.h>

namespace sslab::text {

TextTransformer::TextTransformer(const TextTransformerOptions& options) : options_(options) {
  SSLAB_CHECK(options_.pool() == "mean" || options_.pool() == "cls",
              "text.transformer: pool must be 'mean' or 'cls', got '", options_.pool(), "'");
  SSLAB_CHECK(options_.dim() % options_.heads() == 0, "text.transformer: dim (", options_.dim(),
              ") must be a multiple of heads (", options_.heads(), ")");
  SSLAB_CHECK(options_.vocab_size() > 0, "text.transformer: vocab_size must be > 0");
  token_embed_ = register_module("token_embed", torch::nn::Embedding(options_.vocab_size(), options_.dim()));
  nn::trunc_normal_(token_embed_->weight, 0.02);
  pos_embed_ = register_module("pos_embed", nn::LearnedPositionalEmbedding(nn::LearnedPositionalEmbeddingOptions(
                                                options_.max_length(), options_.dim())));
  stack_ = nn::TransformerStack(
      nn::TransformerStackOptions(options_.dim(), options_.depth(), options_.heads()).mlp_ratio(options_.mlp_ratio()));
  register_module("blocks", stack_->blocks);
  register_module("norm", stack_->norm);
}

torch::Tensor TextTransformer::forward_tokens(const torch::Tensor& ids, const torch::Tensor& padding_mask) {
  SSLAB_CHECK(ids.dim() == 2, "text.transformer: expected ids [B,T], got ", ids.sizes());
  SSLAB_CHECK(ids.size(1) <= options_.max_length(), "text.transformer: sequences of ", ids.size(1),
              " tokens exceed max_length ", options_.max_length(), " (set the dataset's max_length no larger)");
  torch::Tensor x = pos_embed_(token_embed_(ids));
  return stack_(x, padding_mask);
}

torch::Tensor TextTransformer::pool(const torch::Tensor& tokens, const torch::Tensor& padding_mask) const {
  if (options_.pool() == "cls") return nn::cls_pool(tokens);
  return nn::mean_pool(tokens, padding_mask);
}

torch::Tensor TextTransformer::padding_mask(const Batch& batch) const {
  std::string key = input() + ".mask";
  if (!batch.has(key)) return {};
  return batch.at(key).logical_not();
}

torch::Tensor TextTransformer::embed(const Batch& batch) {
  torch::Tensor mask = padding_mask(batch);
  return pool(forward_tokens(batch.at(input()), mask), mask);
}

}  // namespace sslab::text
