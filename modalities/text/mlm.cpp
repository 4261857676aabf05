#include "mlm.h"

#include <cmath>
#include <typeinfo>

namespace sslab::text {

MlmMask mlm_mask(const torch::Tensor& ids, const torch::Tensor& protected_, int64_t mask_id,
                 const torch::Tensor& ordinary_ids, const MlmMaskOptions& o, c10::optional<at::Generator> generator) {
  SSLAB_CHECK(ids.dim() == 2 && protected_.sizes() == ids.sizes(), "text.mlm: ids [B,T] and protected mask ",
              protected_.sizes(), " must match, ids are ", ids.sizes());
  SSLAB_CHECK(ordinary_ids.numel() > 0, "text.mlm: no ordinary tokens to draw random replacements from");
  SSLAB_CHECK(o.mask_token_prob() + o.random_token_prob() <= 1.0 + 1e-9,
              "text.mlm: mask_token_prob + random_token_prob must be <= 1");
  auto opts = torch::TensorOptions().device(ids.device());
  torch::Tensor u_select = torch::rand(ids.sizes(), generator, opts);
  torch::Tensor u_kind = torch::rand(ids.sizes(), generator, opts);
  torch::Tensor pick = torch::randint(ordinary_ids.numel(), ids.sizes(), generator, opts.dtype(torch::kInt64));
  MlmMask m;
  m.selected = u_select.lt(o.mask_prob()).logical_and(protected_.logical_not());
  torch::Tensor to_mask = m.selected.logical_and(u_kind.lt(o.mask_token_prob()));
  torch::Tensor to_random = m.selected.logical_and(u_kind.ge(o.mask_token_prob()))
                                .logical_and(u_kind.lt(o.mask_token_prob() + o.random_token_prob()));
  torch::Tensor random_ids = ordinary_ids.to(ids.device()).index({pick});
  m.inputs = torch::where(to_mask, torch::full_like(ids, mask_id), torch::where(to_random, random_ids, ids));
  m.labels = torch::where(m.selected, ids, torch::full_like(ids, -100));
  return m;
}

Mlm::Mlm(std::shared_ptr<Encoder> encoder, std::vector<int64_t> special_ids, int64_t mask_id,
         const MlmMaskOptions& options, const std::string& where)
    : encoder_(std::dynamic_pointer_cast<TextTransformer>(encoder)), mask_id_(mask_id), options_(options) {
  std::string at = where.empty() ? "" : where + ": ";
  SSLAB_CHECK(encoder, at, "text.mlm needs an encoder");
  if (!encoder_) {
    const Encoder& e = *encoder;
    throw UserError(str(at, "text.mlm needs a text.transformer encoder (its output head is tied to the token ",
                        "embedding), got an encoder of type ", c10::demangle(typeid(e).name())));
  }
  const int64_t V = encoder_->options().vocab_size(), D = encoder_->options().dim();
  SSLAB_CHECK(mask_id >= 0 && mask_id < V, at, "text.mlm: the tokenizer has no [MASK] token within the encoder's ",
              "vocabulary of ", V);
  std::vector<bool> special(static_cast<size_t>(V), false);
  for (int64_t id : special_ids)
    if (id >= 0 && id < V) special[static_cast<size_t>(id)] = true;
  special[static_cast<size_t>(mask_id)] = true;
  std::vector<int64_t> specials, ordinary;
  for (int64_t i = 0; i < V; ++i) (special[static_cast<size_t>(i)] ? specials : ordinary).push_back(i);
  SSLAB_CHECK(!ordinary.empty(), at, "text.mlm: the vocabulary holds only special tokens");
  special_ids_ = register_buffer("special_ids", torch::tensor(specials, torch::kInt64));
  ordinary_ids_ = register_buffer("ordinary_ids", torch::tensor(ordinary, torch::kInt64));
  transform_ = register_module("transform", torch::nn::Linear(D, D));
  transform_norm_ =
      register_module("transform_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(1e-12)));
  bias_ = register_parameter("output_bias", torch::zeros({V}));
  torch::NoGradGuard no_grad;
  nn::trunc_normal_(transform_->weight, 0.02);
  transform_->bias.zero_();
}

torch::Tensor Mlm::head(const torch::Tensor& tokens) {
  torch::Tensor h = transform_norm_(torch::gelu(transform_(tokens)));
  return torch::matmul(h, encoder_->token_embedding().t()) + bias_;
}

torch::Tensor Mlm::protected_positions(const torch::Tensor& ids, const torch::Tensor& padding_mask) const {
  torch::Tensor p = torch::isin(ids, special_ids_.to(ids.device()));
  if (padding_mask.defined()) p = p.logical_or(padding_mask);
  return p;
}

Mlm::Output Mlm::forward(const MlmMask& mask, const torch::Tensor& padding_mask) {
  torch::Tensor tokens = encoder_->forward_tokens(mask.inputs, padding_mask);  // [B,T,D]
  torch::Tensor sel = mask.selected.reshape({-1});
  torch::Tensor idx = sel.nonzero().squeeze(1);
  Output out;
  out.chosen = idx.numel();
  out.targets = mask.labels.reshape({-1}).index_select(0, idx);
  // Only the chosen positions go through the head: [N, V] instead of [B*T, V].
  out.logits = head(tokens.reshape({-1, tokens.size(2)}).index_select(0, idx));
  if (out.chosen == 0) {
    out.loss = out.logits.sum() * 0.0;  // nothing to predict: a zero loss that still has a graph
    return out;
  }
  out.loss = torch::nn::functional::cross_entropy(out.logits, out.targets);
  torch::NoGradGuard no_grad;
  out.accuracy = out.logits.argmax(1).eq(out.targets).to(torch::kFloat64).mean().item<double>();
  return out;
}

Mlm::Output Mlm::forward(const torch::Tensor& ids, const torch::Tensor& padding_mask) {
  MlmMask mask = mlm_mask(ids, protected_positions(ids, padding_mask), mask_id_, ordinary_ids_, options_);
  return forward(mask, padding_mask);
}

ObjectiveOutput Mlm::compute(const Batch& batch) {
  torch::Tensor ids = batch.at(encoder_->input());
  Output out = forward(ids, encoder_->padding_mask(batch));
  double loss = out.loss.item<double>();
  return {out.loss,
          {{"masked_accuracy", out.accuracy},
           {"perplexity", std::exp(loss)},
           {"masked", static_cast<double>(out.chosen) / static_cast<double>(std::max<int64_t>(1, ids.size(0)))}}};
}

}  // namespace sslab::text
