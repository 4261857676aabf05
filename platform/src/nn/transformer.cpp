#include "sslab/nn/transformer.h"

#include <cmath>

#include "sslab/error.h"

namespace sslab::nn {

namespace {

void init_linear(torch::nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(linear->weight);
  if (linear->bias.defined()) linear->bias.zero_();
}

// A value that acts as -infinity in softmax without turning a fully padded
// row into NaN.
double masked_score(torch::ScalarType type) { return type == torch::kHalf ? -6.0e4 : -1.0e30; }

}  // namespace

// ---------------------------------------------------------------- attention

MultiheadSelfAttentionImpl::MultiheadSelfAttentionImpl(const MultiheadSelfAttentionOptions& options_)
    : options(options_) {
  reset();
}

void MultiheadSelfAttentionImpl::reset() {
  SSLAB_CHECK(options.dim() > 0 && options.heads() > 0 && options.dim() % options.heads() == 0, "attention: dim (",
              options.dim(), ") must be a positive multiple of heads (", options.heads(), ")");
  qkv = register_module(
      "qkv", torch::nn::Linear(torch::nn::LinearOptions(options.dim(), 3 * options.dim()).bias(options.qkv_bias())));
  proj = register_module("proj", torch::nn::Linear(options.dim(), options.dim()));
  reset_parameters();
}

void MultiheadSelfAttentionImpl::reset_parameters() {
  init_linear(qkv);
  init_linear(proj);
}

torch::Tensor MultiheadSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask) {
  const int64_t B = x.size(0), T = x.size(1), D = options.dim(), H = options.heads(), Dh = D / H;
  // [B,T,3D] -> [3,B,H,T,Dh]
  torch::Tensor qkv_out = qkv(x).view({B, T, 3, H, Dh}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv_out[0] * (1.0 / std::sqrt(static_cast<double>(Dh)));
  torch::Tensor k = qkv_out[1];
  torch::Tensor v = qkv_out[2];
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));  // [B,H,T,T]
  if (key_padding_mask.defined()) {
    SSLAB_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == B && key_padding_mask.size(1) == T,
                "attention: key_padding_mask must be [", B, ",", T, "], got ", key_padding_mask.sizes());
    scores =
        scores.masked_fill(key_padding_mask.to(torch::kBool).reshape({B, 1, 1, T}), masked_score(scores.scalar_type()));
  }
  torch::Tensor attn = torch::softmax(scores, -1);
  torch::Tensor out = torch::matmul(attn, v);  // [B,H,T,Dh]
  return proj(out.transpose(1, 2).reshape({B, T, D}));
}

// ---------------------------------------------------------------- feed-forward

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& options_) : options(options_) { reset(); }

void FeedForwardImpl::reset() {
  SSLAB_CHECK(options.dim() > 0 && options.hidden() > 0, "feed-forward: dim and hidden must be > 0");
  fc1 = register_module("fc1", torch::nn::Linear(options.dim(), options.hidden()));
  fc2 = register_module("fc2", torch::nn::Linear(options.hidden(), options.dim()));
  reset_parameters();
}

void FeedForwardImpl::reset_parameters() {
  init_linear(fc1);
  init_linear(fc2);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

// ---------------------------------------------------------------- block

TransformerBlockImpl::TransformerBlockImpl(const TransformerBlockOptions& options_) : options(options_) { reset(); }

void TransformerBlockImpl::reset() {
  const int64_t dim = options.dim();
  auto norm_options = torch::nn::LayerNormOptions({dim}).eps(options.norm_eps());
  norm1 = register_module("norm1", torch::nn::LayerNorm(norm_options));
  attn = register_module(
      "attn", MultiheadSelfAttention(MultiheadSelfAttentionOptions(dim, options.heads()).qkv_bias(options.qkv_bias())));
  norm2 = register_module("norm2", torch::nn::LayerNorm(norm_options));
  auto hidden = static_cast<int64_t>(std::llround(static_cast<double>(dim) * options.mlp_ratio()));
  mlp = register_module("mlp", FeedForward(FeedForwardOptions(dim, hidden)));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask) {
  torch::Tensor h = x + attn(norm1(x), key_padding_mask);
  return h + mlp(norm2(h));
}

// ---------------------------------------------------------------- stack

TransformerStackImpl::TransformerStackImpl(const TransformerStackOptions& options_) : options(options_) { reset(); }

void TransformerStackImpl::reset() {
  SSLAB_CHECK(options.depth() >= 0, "transformer: depth must be >= 0, got ", options.depth());
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth(); ++i) {
    TransformerBlock block(TransformerBlockOptions(options.dim(), options.heads())
                               .mlp_ratio(options.mlp_ratio())
                               .qkv_bias(options.qkv_bias())
                               .norm_eps(options.norm_eps()));
    blocks->push_back(block);
  }
  if (options.final_norm())
    norm = register_module("norm",
                           torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()}).eps(options.norm_eps())));
  else
    norm = nullptr;
}

torch::Tensor TransformerStackImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask) {
  torch::Tensor h = x;
  // Blocks are looked up in `blocks` on every call (no cached pointers), so
  // clone() and module replacement stay correct.
  for (const auto& block : *blocks) h = block->as<TransformerBlockImpl>()->forward(h, key_padding_mask);
  return norm ? norm(h) : h;
}

}  // namespace sslab::nn
