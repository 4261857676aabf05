// The ViT encoder and the MAE objective: shapes, gradients, masking and the
// loss against a hand-computed value. Components are built through the
// loaded plugin; vit.cpp/mae.cpp are also compiled in to reach their C++ API.
#include <cmath>
#include <set>

#include "../../modalities/vision/mae.h"
#include "../../modalities/vision/vit.h"
#include "vision_test_util.h"

using sslab::vision::Mae;
using sslab::vision::MaeOptions;
using sslab::vision::Vit;
using sslab::vision::VitOptions;
using vision_test::Env;

using VitMaeTest = vision_test::Seeded;

namespace {

const char* kMaeRecipe = R"(
[encoders.image]
type = "vision.vit"
image_size = 28
patch_size = 4
dim = 32
depth = 2
heads = 4

[[objectives]]
type = "vision.mae"
mask_ratio = 0.75
decoder_dim = 16
decoder_depth = 1
decoder_heads = 2
)";

sslab::Batch image_batch(const torch::Tensor& images) {
  sslab::Batch b;
  b.tensors["image"] = images;
  b.size = images.size(0);
  return b;
}

void expect_all_gradients(torch::nn::Module& m, const std::string& who) {
  for (const auto& p : m.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << who << ": no gradient for " << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << who << ": zero gradient for " << p.key();
  }
}

}  // namespace

TEST_F(VitMaeTest, VitFromRecipeEmbedsAndTrains) {
  Env env(kMaeRecipe);
  auto enc = env.encoder("image");
  EXPECT_EQ(enc->input(), "image");
  EXPECT_EQ(enc->embed_dim(), 32);
  auto params = enc->named_parameters();
  for (const char* name :
       {"patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "norm.weight"})
    EXPECT_TRUE(params.contains(name)) << name;
  EXPECT_TRUE(enc->named_buffers().contains("pos_embed"));
  EXPECT_FALSE(params.contains("pos_embed"));  // fixed sin-cos, not trained
  torch::Tensor emb = enc->embed(image_batch(torch::rand({5, 1, 28, 28})));
  ASSERT_EQ(emb.sizes(), (std::vector<int64_t>{5, 32}));
  emb.pow(2).sum().backward();
  expect_all_gradients(*enc, "vit");
}

TEST_F(VitMaeTest, VitTokensMaskedForwardAndClsToken) {
  Vit vit(VitOptions().image_size(16).patch_size(4).channels(3).dim(24).depth(2).heads(2).pool("cls"));
  ASSERT_TRUE(vit.has_cls_token());
  EXPECT_EQ(vit.num_patches(), 16);
  torch::Tensor images = torch::rand({3, 3, 16, 16});
  torch::Tensor tokens = vit.forward_tokens(images);
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{3, 17, 24}));
  // Keeping every patch in order is the unmasked forward.
  torch::Tensor all = torch::arange(16, torch::kInt64).unsqueeze(0).expand({3, 16});
  EXPECT_TRUE(torch::allclose(vit.forward_masked(images, all), tokens, 1e-5, 1e-6));
  // A subset: [CLS] + the kept patches.
  torch::Tensor keep = torch::tensor({{0, 5, 9, 15}, {3, 2, 1, 0}, {7, 8, 12, 14}}, torch::kInt64);
  ASSERT_EQ(vit.forward_masked(images, keep).sizes(), (std::vector<int64_t>{3, 5, 24}));
  // pool = cls embeds the [CLS] token.
  sslab::Batch b = image_batch(images);
  vit.set_input("image");
  EXPECT_TRUE(torch::allclose(vit.embed(b), tokens.select(1, 0)));
  // A wrong image size is a clear error.
  EXPECT_NE(vision_test::user_error([&] {
              vit.forward_tokens(torch::rand({1, 3, 28, 28}));
            }).find("expected images [B,3,16,16], got [1, 3, 28, 28]"),
            std::string::npos);
}

TEST_F(VitMaeTest, GridPoolConcatenatesQuadrantMeans) {
  // 16x16 image, patch 4: a 4x4 grid of tokens; each 2x2 cell holds 4 patches.
  Vit vit(VitOptions().image_size(16).patch_size(4).channels(1).dim(8).depth(1).heads(2).pool("grid"));
  EXPECT_EQ(vit.embed_dim(), 32);
  torch::Tensor images = torch::rand({2, 1, 16, 16});
  torch::Tensor tokens = vit.forward_tokens(images);  // [2,16,8], row-major patches
  vit.set_input("image");
  torch::Tensor emb = vit.embed(image_batch(images));
  ASSERT_EQ(emb.sizes(), (std::vector<int64_t>{2, 32}));
  // Independently: cell (r, c) averages patches (2r..2r+1, 2c..2c+1); the
  // embedding lists, per channel d, the cells in row-major order.
  for (int64_t d = 0; d < 8; ++d)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t c = 0; c < 2; ++c) {
        double sum = 0;
        for (int64_t i = 2 * r; i < 2 * r + 2; ++i)
          for (int64_t j = 2 * c; j < 2 * c + 2; ++j) sum += tokens[0][i * 4 + j][d].item<double>();
        EXPECT_NEAR(emb[0][d * 4 + r * 2 + c].item<double>(), sum / 4, 1e-5);
      }
}

TEST_F(VitMaeTest, MaeFromRecipeLossMetricsAndGradients) {
  Env env(kMaeRecipe);
  auto enc = env.encoder("image");
  auto obj = env.objective();
  auto params = obj->named_parameters();
  for (const char* name : {"decoder_embed.weight", "mask_token", "decoder_blocks.0.attn.qkv.weight",
                           "decoder_norm.weight", "decoder_pred.weight"})
    EXPECT_TRUE(params.contains(name)) << name;
  EXPECT_EQ(params["decoder_pred.weight"].sizes(), (std::vector<int64_t>{16, 16}));  // 4x4 patches, 1 channel
  for (const auto& p : params)
    EXPECT_NE(p.key().rfind("blocks.", 0), 0u) << "encoder owned by the objective: " << p.key();

  sslab::ObjectiveOutput out = obj->compute(image_batch(torch::rand({4, 1, 28, 28})));
  ASSERT_EQ(out.loss.dim(), 0);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  EXPECT_DOUBLE_EQ(out.metrics.at("mse_masked"), out.loss.item<double>());
  EXPECT_EQ(out.metrics.at("visible"), 12.0);  // round(49 * 0.25)
  out.loss.backward();
  expect_all_gradients(*enc, "vit (through mae)");
  expect_all_gradients(*obj, "mae decoder");
}

TEST_F(VitMaeTest, MaeNeedsAVit) {
  struct NotVit : sslab::Encoder {
    torch::Tensor embed(const sslab::Batch& b) override { return b.at("image").flatten(1); }
    int64_t embed_dim() const override { return 784; }
  };
  Env env(kMaeRecipe);
  sslab::HostAccess::encoders(env.ctx())["image"] = std::make_shared<NotVit>();
  std::string msg = vision_test::user_error([&] { env.objective(); });
  EXPECT_NE(msg.find("vision.mae needs a vision.vit encoder"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NotVit"), std::string::npos) << msg;
}

TEST_F(VitMaeTest, MaskingKeepsExactShareAndDiffersPerSample) {
  EXPECT_EQ(sslab::vision::num_visible(49, 0.75), 12);
  EXPECT_EQ(sslab::vision::num_visible(196, 0.75), 49);
  EXPECT_EQ(sslab::vision::num_visible(10, 0.25), 8);  // 7.5 rounds up
  for (double ratio : {0.5, 0.75, 0.9}) {
    const int64_t B = 16, N = 49, keep = sslab::vision::num_visible(N, ratio);
    auto m = sslab::vision::random_masking(B, N, keep, torch::kCPU);
    ASSERT_EQ(m.ids_keep.sizes(), (std::vector<int64_t>{B, keep}));
    ASSERT_EQ(m.mask.sizes(), (std::vector<int64_t>{B, N}));
    std::set<std::vector<int64_t>> distinct;
    for (int64_t b = 0; b < B; ++b) {
      EXPECT_EQ(m.mask[b].sum().item<double>(), static_cast<double>(N - keep));
      // The kept ids are distinct and exactly the unmasked patches.
      auto ids = m.ids_keep[b].contiguous();
      std::vector<int64_t> v(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + keep);
      std::set<int64_t> unique(v.begin(), v.end());
      EXPECT_EQ(static_cast<int64_t>(unique.size()), keep);
      for (int64_t id : v) EXPECT_EQ(m.mask[b][id].item<float>(), 0.0f);
      // ids_restore inverts the shuffle: kept patches rank below keep.
      for (int64_t id : v) EXPECT_LT(m.ids_restore[b][id].item<int64_t>(), keep);
      distinct.insert(std::vector<int64_t>(unique.begin(), unique.end()));
    }
    EXPECT_GT(distinct.size(), 1u) << "every sample got the same mask";
  }
  // torch::manual_seed fixes the masks.
  torch::manual_seed(7);
  auto a = sslab::vision::random_masking(4, 49, 12, torch::kCPU);
  torch::manual_seed(7);
  auto b = sslab::vision::random_masking(4, 49, 12, torch::kCPU);
  EXPECT_TRUE(torch::equal(a.ids_keep, b.ids_keep));
}

TEST_F(VitMaeTest, MaeForwardShapesAndMaskPerSample) {
  auto vit = std::make_shared<Vit>(
      VitOptions().image_size(16).patch_size(4).channels(3).dim(32).depth(1).heads(2).cls_token(true));
  Mae mae(vit, MaeOptions().mask_ratio(0.6).decoder_dim(16).decoder_depth(1).decoder_heads(2));
  EXPECT_EQ(mae.num_visible(), 6);  // round(16 * 0.4)
  Mae::Output out = mae.forward(torch::rand({5, 3, 16, 16}));
  ASSERT_EQ(out.pred.sizes(), (std::vector<int64_t>{5, 16, 48}));
  ASSERT_EQ(out.mask.sizes(), (std::vector<int64_t>{5, 16}));
  EXPECT_TRUE(torch::equal(out.mask.sum(1), torch::full({5}, 10.0f)));
  out.loss.backward();
  expect_all_gradients(*vit, "vit with cls");
  expect_all_gradients(mae, "mae with cls");
}

// pred, patches [B=2, N=3, P=4], mask [[1,0,1],[0,1,0]]: the loss by loops
// in float64, per-patch normalisation with the unbiased variance.
TEST_F(VitMaeTest, MaeLossEqualsHandComputedValue) {
  const double pred_v[2][3][4] = {{{0.1, -0.2, 0.3, 0.0}, {1.0, 1.0, 1.0, 1.0}, {-0.5, 0.25, 0.5, 2.0}},
                                  {{0.0, 0.0, 0.0, 0.0}, {0.3, 0.6, -0.9, 1.2}, {5.0, 5.0, 5.0, 5.0}}};
  const double patch_v[2][3][4] = {{{0.2, 0.4, 0.6, 0.8}, {0.0, 0.0, 0.0, 0.0}, {1.0, 0.0, 0.5, 0.25}},
                                   {{0.9, 0.1, 0.9, 0.1}, {0.7, 0.7, 0.7, 0.1}, {0.3, 0.2, 0.1, 0.0}}};
  const double mask_v[2][3] = {{1, 0, 1}, {0, 1, 0}};
  const double eps = 1e-6;

  auto expected = [&](bool norm_pix) {
    double total = 0, masked = 0;
    for (int b = 0; b < 2; ++b)
      for (int n = 0; n < 3; ++n) {
        if (mask_v[b][n] == 0) continue;
        double mean = 0, var = 0, sq = 0;
        for (int k = 0; k < 4; ++k) mean += patch_v[b][n][k] / 4;
        for (int k = 0; k < 4; ++k) var += (patch_v[b][n][k] - mean) * (patch_v[b][n][k] - mean) / 3;
        for (int k = 0; k < 4; ++k) {
          const double t = norm_pix ? (patch_v[b][n][k] - mean) / std::sqrt(var + eps) : patch_v[b][n][k];
          sq += (pred_v[b][n][k] - t) * (pred_v[b][n][k] - t) / 4;
        }
        total += sq;
        masked += 1;
      }
    return total / masked;
  };

  std::vector<double> pred_flat, patch_flat, mask_flat;
  for (int b = 0; b < 2; ++b)
    for (int n = 0; n < 3; ++n) {
      mask_flat.push_back(mask_v[b][n]);
      for (int k = 0; k < 4; ++k) {
        pred_flat.push_back(pred_v[b][n][k]);
        patch_flat.push_back(patch_v[b][n][k]);
      }
    }
  torch::Tensor pred = torch::tensor(pred_flat).to(torch::kFloat32).view({2, 3, 4});
  torch::Tensor patches = torch::tensor(patch_flat).to(torch::kFloat32).view({2, 3, 4});
  torch::Tensor mask = torch::tensor(mask_flat).to(torch::kFloat32).view({2, 3});
  // Worked by hand for the plain case: masked patches (0,0), (0,2), (1,1).
  EXPECT_NEAR(expected(false), (0.275 + 1.34375 + 0.985) / 3, 1e-12);
  EXPECT_NEAR(sslab::vision::mae_loss(pred, patches, mask, false).item<double>(), expected(false), 1e-6);
  EXPECT_NEAR(sslab::vision::mae_loss(pred, patches, mask, true).item<double>(), expected(true), 1e-5);
}
