// The classic pretext tasks (rotation, inpainting, denoising): each loss
// against a float64 element-by-element reference of its published formula,
// the corruptions and regions they draw, the decoder's shapes, gradients
// reaching the encoder, and recipe errors.
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

#include "pretext.h"
#include "vision_test_util.h"

namespace {

using namespace sslab::vision;
using vision_test::Env;
using vision_test::Seeded;

std::string pretext_recipe(const std::string& objective) {
  return R"(
[encoders.image]
type = "vision.cnn"
channels = [8, 16]
blocks = 1

[[objectives]]
)" + objective;
}

class Pretext : public Seeded {};

TEST_F(Pretext, RotateByTurnsEachImageCounterClockwise) {
  // 2x2 image [[1, 2], [3, 4]]: a quarter turn counter-clockwise gives [[2, 4], [1, 3]].
  torch::Tensor img = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 2, 2});
  torch::Tensor x = torch::cat({img, img, img, img});
  torch::Tensor out = rotate_by(x, torch::tensor({0, 1, 2, 3}));
  EXPECT_TRUE(torch::equal(out[0][0], torch::tensor({1.f, 2.f, 3.f, 4.f}).view({2, 2})));
  EXPECT_TRUE(torch::equal(out[1][0], torch::tensor({2.f, 4.f, 1.f, 3.f}).view({2, 2})));
  EXPECT_TRUE(torch::equal(out[2][0], torch::tensor({4.f, 3.f, 2.f, 1.f}).view({2, 2})));
  EXPECT_TRUE(torch::equal(out[3][0], torch::tensor({3.f, 1.f, 4.f, 2.f}).view({2, 2})));
  // Random images: four quarter turns are the identity, and k matches rot90.
  torch::Tensor r = torch::rand({6, 3, 5, 5});
  torch::Tensor k = torch::tensor({0, 1, 2, 3, 1, 3});
  torch::Tensor once = rotate_by(r, k);
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_TRUE(torch::equal(once[i], torch::rot90(r[i], k[i].item<int64_t>(), {1, 2}))) << i;
  torch::Tensor back = r;
  for (int t = 0; t < 4; ++t) back = rotate_by(back, k);
  EXPECT_TRUE(torch::equal(back, r));
  EXPECT_NE(vision_test::user_error([&] {
              rotate_by(torch::rand({2, 1, 4, 5}), torch::tensor({0, 1}));
            }).find("H == W"),
            std::string::npos);
}

TEST_F(Pretext, RotationLossIsTheCrossEntropyOfTheFourRotations) {
  Env env(pretext_recipe("type = \"vision.rotation\"\n"));
  auto enc = env.encoder("image");
  auto obj = std::dynamic_pointer_cast<RotationPrediction>(env.objective());
  ASSERT_TRUE(obj);
  enc->eval();  // batch norm from running statistics: logits of a sub-batch equal the whole batch's
  obj->eval();
  torch::Tensor x = torch::rand({5, 1, 12, 12});
  sslab::Batch batch;
  batch.tensors["image"] = x;
  batch.size = 5;
  sslab::ObjectiveOutput o = obj->compute(batch);
  // Reference: the images in their four rotations, label r for rotation r,
  // loss = -1/4B sum_i log softmax(logits_i)[label_i], in float64.
  double sum = 0;
  int64_t right = 0;
  for (int64_t r = 0; r < 4; ++r) {
    torch::Tensor logits = obj->logits(torch::rot90(x, r, {2, 3})).to(torch::kFloat64);
    auto l = logits.accessor<double, 2>();
    for (int64_t i = 0; i < 5; ++i) {
      double mx = -1e300, z = 0;
      int64_t best = 0;
      for (int64_t c = 0; c < 4; ++c) {
        mx = std::max(mx, l[i][c]);
        if (l[i][c] > l[i][best]) best = c;
      }
      for (int64_t c = 0; c < 4; ++c) z += std::exp(l[i][c] - mx);
      sum += -(l[i][r] - mx - std::log(z));
      right += best == r;
    }
  }
  EXPECT_NEAR(o.loss.item<double>(), sum / 20, 1e-5);
  EXPECT_DOUBLE_EQ(o.metrics.at("accuracy"), static_cast<double>(right) / 20);
  EXPECT_EQ(o.metrics.at("images"), 20);
}

TEST_F(Pretext, RotationTrainsTheEncoderAndOneRandomRotationPerImageWorksToo) {
  Env env(pretext_recipe("type = \"vision.rotation\"\nall_rotations = false\nhidden = 32\n"));
  auto enc = env.encoder("image");
  auto obj = env.objective();
  sslab::Batch batch;
  batch.tensors["image"] = torch::rand({8, 1, 12, 12});
  batch.size = 8;
  sslab::ObjectiveOutput o = obj->compute(batch);
  EXPECT_EQ(o.metrics.at("images"), 8);
  o.loss.backward();
  for (const auto& p : enc->parameters()) ASSERT_TRUE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  // A quarter turn of a non-square image is not an image of the same shape.
  batch.tensors["image"] = torch::rand({8, 1, 12, 10});
  EXPECT_NE(vision_test::user_error([&] { obj->compute(batch); }).find("needs square images"), std::string::npos);
}

TEST_F(Pretext, PixelDecoderUpsamplesToTheAskedSize) {
  for (auto [h, w, stages] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {28, 28, 2}, {14, 14, 1}, {32, 32, 3}, {7, 7, 0}, {64, 48, 3}, {5, 5, 0}}) {
    PixelDecoder d(PixelDecoderOptions().in_dim(10).channels(3).height(h).width(w).hidden(32));
    EXPECT_EQ(d->stages(), stages) << h << "x" << w;
    EXPECT_EQ(d->forward(torch::rand({2, 10})).sizes(), (std::vector<int64_t>{2, 3, h, w})) << h << "x" << w;
  }
}

TEST_F(Pretext, InpaintingRegionsMasksAndCrops) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  Regions r = inpainting_regions(64, 10, 12, 4, "random", gen);
  EXPECT_GE(r.top.min().item<int64_t>(), 0);
  EXPECT_LE(r.top.max().item<int64_t>(), 6);
  EXPECT_LE(r.left.max().item<int64_t>(), 8);
  EXPECT_GT(r.left.max().item<int64_t>(), r.left.min().item<int64_t>());  // not all in one place
  torch::Tensor m = region_mask(r, 10, 12, torch::kCPU);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{64, 1, 10, 12}));
  EXPECT_TRUE(torch::equal(m.sum({1, 2, 3}), torch::full({64}, 16.f)));
  torch::Tensor x = torch::rand({64, 2, 10, 12});
  torch::Tensor crop = crop_regions(x, r);
  for (int64_t b = 0; b < 64; b += 7) {
    const int64_t t = r.top[b].item<int64_t>(), l = r.left[b].item<int64_t>();
    EXPECT_TRUE(torch::equal(crop[b], x[b].narrow(1, t, 4).narrow(2, l, 4))) << b;
    EXPECT_EQ(m[b][0][t][l].item<float>(), 1.f);
  }
  Regions c = inpainting_regions(2, 28, 28, 14, "center");
  EXPECT_EQ(c.top[0].item<int64_t>(), 7);
  EXPECT_EQ(c.left[1].item<int64_t>(), 7);
}

TEST_F(Pretext, InpaintingLossIsTheL2OfTheHiddenSquare) {
  Env env(pretext_recipe("type = \"vision.inpainting\"\nimage_size = 12\nregion = 0.5\nfill = 0.25\n"));
  auto enc = env.encoder("image");
  auto obj = std::dynamic_pointer_cast<Inpainting>(env.objective());
  ASSERT_TRUE(obj);
  EXPECT_EQ(obj->region_size(), 6);
  torch::Tensor x = torch::rand({4, 1, 12, 12});
  at::Generator gen = at::detail::createCPUGenerator(11), again = at::detail::createCPUGenerator(11);
  Inpainting::Output out = obj->forward(x, gen);
  Regions r = inpainting_regions(4, 12, 12, 6, "random", again);  // the same draw
  ASSERT_EQ(out.pred.sizes(), (std::vector<int64_t>{4, 1, 6, 6}));
  // Reference: L = 1/(B s^2) sum_b sum_{(i,j) in region_b} (pred_b[i - top, j - left] - x_b[i, j])^2,
  // and the encoder saw x outside the region and `fill` inside.
  auto p = out.pred.detach().to(torch::kFloat64);
  auto xd = x.to(torch::kFloat64);
  auto in = out.input.to(torch::kFloat64);
  double sum = 0;
  for (int64_t b = 0; b < 4; ++b) {
    const int64_t t = r.top[b].item<int64_t>(), l = r.left[b].item<int64_t>();
    for (int64_t i = 0; i < 12; ++i)
      for (int64_t j = 0; j < 12; ++j) {
        const bool hidden = i >= t && i < t + 6 && j >= l && j < l + 6;
        EXPECT_NEAR(in[b][0][i][j].item<double>(), hidden ? 0.25 : xd[b][0][i][j].item<double>(), 1e-7);
        if (hidden) sum += std::pow(p[b][0][i - t][j - l].item<double>() - xd[b][0][i][j].item<double>(), 2);
      }
  }
  EXPECT_NEAR(out.loss.item<double>(), sum / (4 * 36), 1e-6);
  out.loss.backward();
  for (const auto& q : enc->parameters()) ASSERT_TRUE(q.grad().defined());
  EXPECT_GT(enc->parameters().front().grad().abs().sum().item<double>(), 0);
}

TEST_F(Pretext, CorruptionsChangeWhatTheySay) {
  torch::Tensor x = torch::rand({8, 1, 32, 32}) * 0.8 + 0.1;  // no value is 0 or 1 already
  auto [masked, hit] = corrupt(x, "mask", 0.3);
  EXPECT_NEAR(hit.mean().item<double>(), 0.3, 0.02);
  EXPECT_TRUE(torch::equal(masked.eq(0).to(torch::kFloat32), hit));
  EXPECT_TRUE(torch::equal(masked * (1 - hit), x * (1 - hit)));
  auto [noisy, all] = corrupt(x, "gaussian", 0.2);
  EXPECT_NEAR((noisy - x).std().item<double>(), 0.2, 0.01);
  EXPECT_EQ(all.min().item<float>(), 1.f);
  auto [sp, sp_hit] = corrupt(x, "salt_pepper", 0.25);
  EXPECT_NEAR(sp_hit.mean().item<double>(), 0.25, 0.02);
  torch::Tensor changed = sp.masked_select(sp_hit.to(torch::kBool));
  EXPECT_TRUE(changed.eq(0).logical_or(changed.eq(1)).all().item<bool>());
  EXPECT_NEAR(changed.mean().item<double>(), 0.5, 0.05);
  EXPECT_TRUE(torch::equal(sp * (1 - sp_hit), x * (1 - sp_hit)));
  // Reproducible from a generator.
  at::Generator g1 = at::detail::createCPUGenerator(5), g2 = at::detail::createCPUGenerator(5);
  EXPECT_TRUE(torch::equal(corrupt(x, "mask", 0.3, g1).first, corrupt(x, "mask", 0.3, g2).first));
}

TEST_F(Pretext, DenoisingLossIsTheL2OfTheCleanImage) {
  Env env(pretext_recipe("type = \"vision.denoising\"\nimage_size = 8\ncorruption = \"salt_pepper\"\nlevel = 0.2\n"));
  auto enc = env.encoder("image");
  auto obj = std::dynamic_pointer_cast<Denoising>(env.objective());
  ASSERT_TRUE(obj);
  torch::Tensor x = torch::rand({3, 1, 8, 8});
  at::Generator gen = at::detail::createCPUGenerator(2), again = at::detail::createCPUGenerator(2);
  Denoising::Output out = obj->forward(x, gen);
  EXPECT_TRUE(torch::equal(out.input, corrupt(x, "salt_pepper", 0.2, again).first));
  ASSERT_EQ(out.pred.sizes(), x.sizes());
  auto p = out.pred.detach().to(torch::kFloat64);
  auto xd = x.to(torch::kFloat64);
  double sum = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t j = 0; j < 8; ++j) sum += std::pow(p[b][0][i][j].item<double>() - xd[b][0][i][j].item<double>(), 2);
  EXPECT_NEAR(out.loss.item<double>(), sum / (3 * 64), 1e-6);
  // The pictures: input, reconstruction and original of each image, in [0, 1].
  obj->eval();
  torch::NoGradGuard no_grad;
  sslab::Batch batch;
  batch.tensors["image"] = x;
  batch.size = 3;
  auto pics = obj->pictures(batch);
  ASSERT_EQ(pics.count("reconstruction"), 1u);
  EXPECT_EQ(pics.at("reconstruction").size(0), 1);
  EXPECT_EQ(pics.at("reconstruction").size(1), 3 * (8 + 2) + 2);
}

TEST_F(Pretext, RecipeErrorsNameTheKey) {
  {
    Env env(pretext_recipe("type = \"vision.denoising\"\nlevel = 1.5\n"));
    env.encoder("image");
    std::string msg = vision_test::user_error([&] { env.objective(); });
    EXPECT_NE(msg.find("objectives.0.level"), std::string::npos) << msg;
    EXPECT_NE(msg.find("must be <= 1"), std::string::npos) << msg;
  }
  {
    Env env(pretext_recipe("type = \"vision.inpainting\"\nimage_size = 12\n"));
    env.encoder("image");
    auto obj = env.objective();
    sslab::Batch batch;
    batch.tensors["image"] = torch::rand({2, 1, 28, 28});
    batch.size = 2;
    std::string msg = vision_test::user_error([&] { obj->compute(batch); });
    EXPECT_NE(msg.find("set its image_size and channels"), std::string::npos) << msg;
  }
}

}  // namespace
