// The shared SDK blocks in sslab/nn: attention with padding, the block and
// stack, patch embedding, positional embeddings, patchify, pooling, MLP.
#include <cmath>

#include <sslab/nn/embedding.h>
#include <sslab/nn/mlp.h>
#include <sslab/nn/pooling.h>
#include <sslab/nn/transformer.h>

#include "vision_test_util.h"

using namespace sslab::nn;
using vision_test::Seeded;

using NnTest = Seeded;

TEST_F(NnTest, AttentionIgnoresPaddedKeys) {
  MultiheadSelfAttention attn(16, 4);
  torch::Tensor x = torch::randn({2, 7, 16});
  // Sample 0 has 4 real tokens and 3 padding tokens; sample 1 none padded.
  torch::Tensor pad = torch::zeros({2, 7}, torch::kBool);
  pad.index_put_({0, torch::indexing::Slice(4, 7)}, true);
  torch::Tensor y = attn(x, pad);
  ASSERT_EQ(y.sizes(), x.sizes());
  // The real tokens of sample 0 must not see the padding: same as attention
  // over the 4 real tokens alone.
  torch::Tensor alone = attn(x.slice(0, 0, 1).slice(1, 0, 4));
  EXPECT_TRUE(torch::allclose(y.slice(0, 0, 1).slice(1, 0, 4), alone, 1e-5, 1e-6));
  // Without padding the mask changes nothing.
  EXPECT_TRUE(torch::allclose(y[1], attn(x.slice(0, 1, 2))[0], 1e-5, 1e-6));
  // A fully padded sample gives finite values, not NaN.
  torch::Tensor all_pad = torch::ones({1, 7}, torch::kBool);
  EXPECT_TRUE(torch::isfinite(attn(x.slice(0, 0, 1), all_pad)).all().item<bool>());
}

TEST_F(NnTest, AttentionMatchesHandWrittenSoftmax) {
  MultiheadSelfAttention attn(MultiheadSelfAttentionOptions(8, 2));
  torch::Tensor x = torch::randn({1, 3, 8}, torch::kFloat64);
  attn->to(torch::kFloat64);
  // Reference: per head h, softmax(q_h k_h^T / sqrt(4)) v_h, then proj.
  torch::Tensor qkv = torch::linear(x[0], attn->qkv->weight, attn->qkv->bias);  // [3, 24]
  torch::Tensor heads_out = torch::zeros({3, 8}, torch::kFloat64);
  for (int h = 0; h < 2; ++h) {
    torch::Tensor q = qkv.slice(1, h * 4, h * 4 + 4), k = qkv.slice(1, 8 + h * 4, 8 + h * 4 + 4),
                  v = qkv.slice(1, 16 + h * 4, 16 + h * 4 + 4);
    for (int i = 0; i < 3; ++i) {
      double w[3], total = 0;
      for (int j = 0; j < 3; ++j) {
        w[j] = std::exp((q[i] * k[j]).sum().item<double>() / 2.0);
        total += w[j];
      }
      for (int j = 0; j < 3; ++j) heads_out[i].slice(0, h * 4, h * 4 + 4).add_((w[j] / total) * v[j]);
    }
  }
  torch::Tensor expected = torch::linear(heads_out, attn->proj->weight, attn->proj->bias);
  EXPECT_TRUE(torch::allclose(attn(x)[0], expected, 1e-10, 1e-12));
}

TEST_F(NnTest, StackNamesShapesAndGradients) {
  TransformerStack stack(TransformerStackOptions(32, 2, 4).mlp_ratio(2.0));
  auto params = stack->named_parameters();
  for (const char* name : {"blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias",
                           "blocks.1.norm2.bias", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "norm.weight"})
    EXPECT_TRUE(params.contains(name)) << name;
  EXPECT_EQ(params["blocks.0.mlp.fc1.weight"].sizes(), (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(params["blocks.0.attn.qkv.weight"].sizes(), (std::vector<int64_t>{96, 32}));
  torch::Tensor x = torch::randn({3, 5, 32});
  torch::Tensor y = stack(x);
  ASSERT_EQ(y.sizes(), x.sizes());
  y.pow(2).sum().backward();
  for (const auto& p : stack->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  // clone() copies the weights into an independent module.
  auto copy = std::dynamic_pointer_cast<TransformerStackImpl>(stack->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(torch::allclose(copy->forward(x), y));
}

TEST_F(NnTest, PatchEmbedEqualsStridedConvolution) {
  PatchEmbed2d embed(PatchEmbed2dOptions(12, 4, 3, 10));
  EXPECT_EQ(embed->num_patches(), 9);
  torch::Tensor images = torch::rand({2, 3, 12, 12});
  torch::Tensor tokens = embed(images);
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{2, 9, 10}));
  namespace F = torch::nn::functional;
  torch::Tensor conv = F::conv2d(images, embed->proj->weight, F::Conv2dFuncOptions().bias(embed->proj->bias).stride(4));
  EXPECT_TRUE(torch::allclose(tokens, conv.flatten(2).transpose(1, 2), 1e-5, 1e-6));
  EXPECT_NE(vision_test::user_error([&] {
              embed(torch::rand({2, 3, 8, 8}));
            }).find("expected images [B,3,12,12]"),
            std::string::npos);
}

TEST_F(NnTest, PatchifyOrderAndRoundTrip) {
  const int64_t p = 2;
  torch::Tensor images = torch::rand({2, 3, 4, 6});
  torch::Tensor patches = patchify(images, p);
  ASSERT_EQ(patches.sizes(), (std::vector<int64_t>{2, 6, p * p * 3}));
  // patch (row r, column c) = index r*3 + c holds (i, j, channel) in that order.
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < p; ++i)
        for (int64_t j = 0; j < p; ++j)
          for (int64_t ch = 0; ch < 3; ++ch)
            EXPECT_EQ(patches[1][r * 3 + c][(i * p + j) * 3 + ch].item<float>(),
                      images[1][ch][r * p + i][c * p + j].item<float>());
  EXPECT_TRUE(torch::equal(unpatchify(patches, p, 3, 2), images));
}

TEST_F(NnTest, SinCos2dMatchesFormula) {
  const int64_t dim = 8, gh = 2, gw = 3;
  torch::Tensor pe = sincos_pos_embed_2d(dim, gh, gw, /*cls_token=*/true);
  ASSERT_EQ(pe.sizes(), (std::vector<int64_t>{1 + gh * gw, dim}));
  EXPECT_EQ(pe[0].abs().sum().item<double>(), 0.0);
  // Columns [0,2): sin(x w_k), [2,4): cos(x w_k), [4,6): sin(y w_k), [6,8): cos(y w_k),
  // w_k = 10000^(-k/2), x = column, y = row of the patch.
  for (int64_t row = 0; row < gh; ++row)
    for (int64_t col = 0; col < gw; ++col) {
      torch::Tensor e = pe[1 + row * gw + col];
      for (int k = 0; k < 2; ++k) {
        const double w = std::pow(10000.0, -k / 2.0);
        EXPECT_NEAR(e[k].item<double>(), std::sin(col * w), 1e-6);
        EXPECT_NEAR(e[2 + k].item<double>(), std::cos(col * w), 1e-6);
        EXPECT_NEAR(e[4 + k].item<double>(), std::sin(row * w), 1e-6);
        EXPECT_NEAR(e[6 + k].item<double>(), std::cos(row * w), 1e-6);
      }
    }
  torch::Tensor pe1 = sincos_pos_embed_1d(4, 5);
  EXPECT_NEAR(pe1[3][1].item<double>(), std::sin(3 * 0.01), 1e-6);
  EXPECT_NEAR(pe1[3][3].item<double>(), std::cos(3 * 0.01), 1e-6);
}

TEST_F(NnTest, LearnedPositionsAndPooling) {
  LearnedPositionalEmbedding pos(LearnedPositionalEmbeddingOptions(10, 4));
  torch::Tensor x = torch::zeros({2, 6, 4});
  EXPECT_TRUE(torch::equal(pos(x)[1], pos->weight.slice(0, 0, 6)));
  EXPECT_LE(pos->weight.abs().max().item<double>(), 0.04 + 1e-7);  // truncated at 2 std

  torch::Tensor tokens = torch::arange(24, torch::kFloat32).view({2, 3, 4});
  torch::Tensor pad = torch::tensor({0, 0, 1, 0, 0, 0}, torch::kBool).view({2, 3});
  torch::Tensor pooled = mean_pool(tokens, pad);
  EXPECT_TRUE(torch::allclose(pooled[0], (tokens[0][0] + tokens[0][1]) / 2));
  EXPECT_TRUE(torch::allclose(pooled[1], tokens[1].mean(0)));
  EXPECT_TRUE(torch::equal(cls_pool(tokens), tokens.select(1, 0)));
}

TEST_F(NnTest, MlpHead) {
  Mlp mlp(MlpOptions({8, 16, 4}).norm("batch"));
  EXPECT_TRUE(mlp->named_parameters().contains("layers.0.weight"));
  EXPECT_FALSE(mlp->named_parameters().contains("layers.0.bias"));  // no bias before batch norm
  EXPECT_EQ(mlp(torch::randn({5, 8})).sizes(), (std::vector<int64_t>{5, 4}));
}
