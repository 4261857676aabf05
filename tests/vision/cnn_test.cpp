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
