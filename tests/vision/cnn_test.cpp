// The residual CNN encoder: shapes per stage, pooling, input checks.
#include "../../modalities/vision/cnn.h"

#include "vision_test_util.h"

using sslab::vision::Cnn;
using sslab::vision::CnnOptions;
using CnnTest = vision_test::Seeded;

TEST_F(CnnTest, StagesHalveTheResolutionAndPoolToTheLastWidth) {
  Cnn cnn(CnnOptions().channels({8, 16, 24}).blocks(2));
  cnn.set_input("image");
  torch::Tensor x = torch::rand({3, 1, 28, 28});
  EXPECT_EQ(cnn.features(x).sizes(), (std::vector<int64_t>{3, 24, 7, 7}));
  sslab::Batch b;
  b.tensors["image"] = x;
  b.size = 3;
  torch::Tensor e = cnn.embed(b);
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{3, 24}));
  EXPECT_EQ(cnn.embed_dim(), 24);
  EXPECT_TRUE(torch::allclose(e, cnn.features(x).mean({2, 3}), 1e-5, 1e-6));
  // Two blocks per stage: 3 stages x 2 blocks; one projected shortcut per widening stage.
  int shortcuts = 0;
  for (const auto& m : cnn.named_modules("", false))
    if (m.key().size() > 9 && m.key().substr(m.key().size() - 9) == ".shortcut") ++shortcuts;
  EXPECT_EQ(shortcuts, 2);
}

TEST_F(CnnTest, StemPoolHalvesTheFirstStage) {
  Cnn cnn(CnnOptions().channels({8, 16, 24, 32}).stem_pool(true));
  torch::Tensor x = torch::rand({2, 1, 28, 28});
  // 28 -> 14 (pool) -> 14 -> 7 -> 4 -> 2.
  EXPECT_EQ(cnn.features(x).sizes(), (std::vector<int64_t>{2, 32, 2, 2}));
  EXPECT_EQ(cnn.embed_dim(), 32);
}

TEST_F(CnnTest, GridPoolKeepsTheMeansOfFourCells) {
  Cnn cnn(CnnOptions().channels({8, 16}).pool("grid"));
  cnn.set_input("image");
  torch::Tensor x = torch::rand({2, 1, 28, 28});
  sslab::Batch b;
  b.tensors["image"] = x;
  b.size = 2;
  torch::Tensor e = cnn.embed(b), map = cnn.features(x);  // map [2, 16, 14, 14]
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(cnn.embed_dim(), 64);
  // Channel c, cell (i, j) sits at c * 4 + i * 2 + j: the mean of that 7x7 quarter.
  torch::Tensor cell = map.index({torch::indexing::Slice(), 5, torch::indexing::Slice(7, 14), torch::indexing::Slice(0, 7)});
  EXPECT_TRUE(torch::allclose(e.select(1, 5 * 4 + 1 * 2 + 0), cell.mean({1, 2}), 1e-5, 1e-6));
}

TEST_F(CnnTest, WrongChannelCountIsAClearError) {
  Cnn cnn(CnnOptions().in_channels(3));
  try {
    cnn.features(torch::rand({1, 1, 28, 28}));
    FAIL() << "no error";
  } catch (const sslab::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("vision.cnn: expected images [B, 3, H, W]"), std::string::npos) << e.what();
  }
}

TEST_F(CnnTest, ChannelsLastGivesTheSameEmbeddingAndGradients) {
  // Same seed, same initial weights; only the memory layout differs.
  torch::manual_seed(3);
  Cnn nhwc(CnnOptions().channels({8, 16, 24}).stem_pool(true).pool("grid").channels_last(true));
  torch::manual_seed(3);
  Cnn nchw(CnnOptions().channels({8, 16, 24}).stem_pool(true).pool("grid").channels_last(false));
  auto pa = nhwc.parameters(), pb = nchw.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    ASSERT_TRUE(torch::equal(pa[i], pb[i])) << i;
    if (pa[i].dim() == 4) {
      EXPECT_TRUE(pa[i].is_contiguous(torch::MemoryFormat::ChannelsLast)) << i;
      EXPECT_TRUE(pb[i].is_contiguous()) << i;
    }
  }
  nhwc.set_input("image");
  nchw.set_input("image");
  sslab::Batch b;
  b.tensors["image"] = torch::rand({4, 1, 28, 28});
  b.size = 4;
  torch::Tensor ea = nhwc.embed(b), eb = nchw.embed(b);
  ASSERT_EQ(ea.sizes(), eb.sizes());
  EXPECT_TRUE(torch::allclose(ea, eb, 1e-4, 1e-5));
  torch::Tensor w = torch::randn_like(eb);
  (ea * w).sum().backward();
  (eb * w).sum().backward();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::allclose(pa[i].grad(), pb[i].grad(), 1e-3, 1e-4)) << i;
}

TEST_F(CnnTest, InputNormalisationInsideTheEncoderEqualsNormalisedInputs) {
  torch::manual_seed(4);
  Cnn inside(CnnOptions().channels({8, 16}).input_mean({0.25}).input_std({0.5}));
  torch::manual_seed(4);
  Cnn outside(CnnOptions().channels({8, 16}));
  inside.eval();
  outside.eval();
  torch::Tensor x = torch::rand({3, 1, 28, 28});
  EXPECT_TRUE(torch::allclose(inside.features(x), outside.features((x - 0.25) / 0.5), 1e-4, 1e-5));
  // Per channel on a 3-channel input.
  torch::manual_seed(5);
  Cnn rgb(CnnOptions().in_channels(3).channels({8}).input_mean({0.1, 0.2, 0.3}).input_std({1.0, 2.0, 4.0}));
  torch::manual_seed(5);
  Cnn rgb_plain(CnnOptions().in_channels(3).channels({8}));
  rgb.eval();
  rgb_plain.eval();
  torch::Tensor y = torch::rand({2, 3, 16, 16});
  torch::Tensor m = torch::tensor({0.1, 0.2, 0.3}).view({1, 3, 1, 1}), s = torch::tensor({1.0, 2.0, 4.0}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(rgb.features(y), rgb_plain.features((y - m) / s), 1e-4, 1e-5));
}

TEST_F(CnnTest, BadInputNormalisationIsAClearError) {
  auto message = [](const CnnOptions& o) {
    try {
      Cnn cnn(o);
    } catch (const sslab::UserError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(message(CnnOptions().input_mean({0.5}).input_std({})).find("input_mean has 1 values but input_std has 0"),
            std::string::npos);
  EXPECT_NE(message(CnnOptions().input_mean({0.1, 0.2}).input_std({1, 1})).find("one value or one per channel (1)"),
            std::string::npos);
  EXPECT_NE(message(CnnOptions().input_mean({0.5}).input_std({0.0})).find("every input_std must be > 0"),
            std::string::npos);
}

TEST_F(CnnTest, InputSizeResizesEveryInputBeforeTheStem) {
  torch::manual_seed(6);
  Cnn sized(CnnOptions().channels({8, 16, 24, 32}).stem_pool(true).pool("grid").input_size(36));
  torch::manual_seed(6);
  Cnn plain(CnnOptions().channels({8, 16, 24, 32}).stem_pool(true).pool("grid"));
  sized.eval();
  plain.eval();
  torch::Tensor x = torch::rand({2, 1, 28, 28});
  // 36 -> 18 (pool) -> 18 -> 9 -> 5 -> 3: a 3x3 final map where 28 px gives 2x2.
  EXPECT_EQ(sized.features(x).sizes(), (std::vector<int64_t>{2, 32, 3, 3}));
  EXPECT_EQ(plain.features(x).sizes(), (std::vector<int64_t>{2, 32, 2, 2}));
  namespace F = torch::nn::functional;
  torch::Tensor up = F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{36, 36}).mode(torch::kBilinear).align_corners(false));
  EXPECT_TRUE(torch::allclose(sized.features(x), plain.features(up), 1e-4, 1e-5));
  // Inputs already at input_size pass unchanged.
  EXPECT_TRUE(torch::allclose(sized.features(up), plain.features(up), 1e-4, 1e-5));
}
