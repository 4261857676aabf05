// Image augmentations built through the loaded plugin: shape and range kept,
// the same rng seed gives the same output, and each does what it says.
#include "vision_test_util.h"

using vision_test::Env;

namespace {

const char* kRecipe = R"(
[[transforms.image]]
type = "vision.random_resized_crop"
size = 20

[[transforms.image]]
type = "vision.horizontal_flip"
p = 0.5

[[transforms.image]]
type = "vision.color_jitter"
brightness = 0.5
contrast = 0.5
p = 1.0

[[transforms.image]]
type = "vision.gaussian_blur"
kernel_size = 5
sigma = [0.5, 1.5]
p = 1.0

[[transforms.image]]
type = "vision.solarize"
threshold = 0.6
p = 0.5

[[transforms.image]]
type = "vision.normalize"
mean = [0.5, 0.4, 0.3]
std = [0.2, 0.25, 0.5]
)";

torch::Tensor apply(const sslab::Transform& t, const torch::Tensor& image, uint64_t seed) {
  sslab::Rng rng(seed);
  return t.apply(image, rng);
}

class TransformTest : public vision_test::Seeded {
 protected:
  void SetUp() override {
    Seeded::SetUp();
    rgb = torch::rand({3, 28, 28});
    grey = torch::rand({1, 28, 28});
  }
  Env env{kRecipe};
  torch::Tensor rgb, grey;
};

}  // namespace

TEST_F(TransformTest, ShapeRangeAndDeterminism) {
  for (size_t i = 0; i < 5; ++i) {  // all but normalize keep [0,1]
    auto t = env.transform("image", i);
    for (const torch::Tensor& image : {rgb, grey}) {
      bool any_differs = false;
      for (uint64_t seed = 0; seed < 8; ++seed) {
        torch::Tensor a = apply(*t, image, seed);
        const int64_t side = i == 0 ? 20 : 28;
        ASSERT_EQ(a.sizes(), (std::vector<int64_t>{image.size(0), side, side})) << "transform " << i;
        EXPECT_GE(a.min().item<float>(), 0.0f) << "transform " << i;
        EXPECT_LE(a.max().item<float>(), 1.0f) << "transform " << i;
        EXPECT_TRUE(torch::equal(a, apply(*t, image, seed))) << "transform " << i << " not deterministic";
        any_differs = any_differs || !torch::equal(a, apply(*t, image, seed + 100));
      }
      EXPECT_TRUE(any_differs) << "transform " << i << " ignores its rng";
    }
  }
}

TEST_F(TransformTest, EachDoesWhatItSays) {
  // Flip: either the image or its mirror.
  auto flip = env.transform("image", 1);
  int flipped = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    torch::Tensor out = apply(*flip, rgb, seed);
    if (torch::equal(out, rgb.flip({2})))
      ++flipped;
    else
      EXPECT_TRUE(torch::equal(out, rgb));
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 20);

  // Blur: keeps a constant image, smooths noise.
  auto blur = env.transform("image", 3);
  torch::Tensor flat = torch::full({3, 28, 28}, 0.25f);
  EXPECT_TRUE(torch::allclose(apply(*blur, flat, 1), flat, 1e-6, 1e-6));
  EXPECT_LT(apply(*blur, rgb, 1).var().item<double>(), 0.6 * rgb.var().item<double>());

  // Solarize: inverts exactly the pixels >= threshold, or does nothing.
  auto solarize = env.transform("image", 4);
  torch::Tensor inverted = torch::where(rgb >= 0.6, 1.0 - rgb, rgb);
  int applied = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    torch::Tensor out = apply(*solarize, rgb, seed);
    if (torch::equal(out, inverted))
      ++applied;
    else
      EXPECT_TRUE(torch::equal(out, rgb));
  }
  EXPECT_GT(applied, 0);

  // Normalize: per-channel (x - mean) / std; a channel-count mismatch is an error.
  auto norm = env.transform("image", 5);
  torch::Tensor expected =
      (rgb - torch::tensor({0.5f, 0.4f, 0.3f}).view({3, 1, 1})) / torch::tensor({0.2f, 0.25f, 0.5f}).view({3, 1, 1});
  EXPECT_TRUE(torch::allclose(apply(*norm, rgb, 0), expected, 1e-5, 1e-6));
  EXPECT_NE(vision_test::user_error([&] {
              apply(*norm, torch::rand({2, 28, 28}), 0);
            }).find("normalize: mean/std have 3 values but the image has 2 channels"),
            std::string::npos);
}

TEST_F(TransformTest, IdentitySettings) {
  Env ident(R"(
[[transforms.image]]
type = "vision.random_resized_crop"
size = 28
scale = [1.0, 1.0]
ratio = [1.0, 1.0]

[[transforms.image]]
type = "vision.color_jitter"
brightness = 0.0
contrast = 0.0
p = 1.0
)");
  EXPECT_TRUE(torch::allclose(apply(*ident.transform("image", 0), rgb, 3), rgb, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(apply(*ident.transform("image", 1), rgb, 3), rgb, 1e-6, 1e-6));
  // Bad settings are recipe errors naming the key.
  Env bad("[[transforms.image]]\ntype = \"vision.gaussian_blur\"\nkernel_size = 4\n");
  EXPECT_NE(vision_test::user_error([&] {
              bad.transform("image", 0);
            }).find("transforms.image.0.kernel_size must be odd, got 4"),
            std::string::npos)
      << vision_test::user_error([&] { bad.transform("image", 0); });
}
