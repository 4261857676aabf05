// Audio transforms built through the plugin: crops, augmentations, log-mel.
#include <set>

#include "audio_test_util.h"
#include "transforms.h"

namespace {

using audio_test::Env;
using audio_test::sine;
using sslab_test::user_error;

torch::Tensor tone(double hz, double seconds, int rate = 16000) {
  auto s = sine(hz, seconds, rate);
  return torch::from_blob(s.data(), {static_cast<int64_t>(s.size())}, torch::kFloat32).clone();
}

TEST(Transforms, RandomCropIsASliceOfTheInput) {
  Env env("[[transforms.\"audio.wave\"]]\ntype = \"audio.random_crop\"\nseconds = 0.1\n");
  auto crop = env.transform("audio.wave");
  torch::Tensor x = torch::arange(16000, torch::kFloat32);
  sslab::Rng rng(3);
  std::set<int64_t> starts;
  for (int i = 0; i < 10; ++i) {
    torch::Tensor y = crop->apply(x, rng);
    ASSERT_EQ(y.size(0), 1600);
    int64_t start = y[0].item<int64_t>();
    EXPECT_TRUE(torch::equal(y, x.slice(0, start, start + 1600)));
    starts.insert(start);
  }
  EXPECT_GT(starts.size(), 5u);
  EXPECT_EQ(crop->apply(x.slice(0, 0, 100), rng).size(0), 100);  // shorter clips pass whole
}

TEST(Transforms, NoiseHasTheRequestedSnrAndGainTheRequestedDecibels) {
  Env env(
      "[[transforms.\"audio.wave\"]]\ntype = \"audio.noise\"\nsnr_db = [10.0, 10.0]\np = 1.0\n"
      "[[transforms.\"audio.wave\"]]\ntype = \"audio.gain\"\ndb = [-6.0, -6.0]\n");
  auto noise = env.transform("audio.wave", 0);
  auto gain = env.transform("audio.wave", 1);
  torch::Tensor x = tone(440, 1.0);
  sslab::Rng rng(0);
  torch::Tensor y = noise->apply(x, rng);
  double snr = 10 * std::log10(x.pow(2).mean().item<double>() / (y - x).pow(2).mean().item<double>());
  EXPECT_NEAR(snr, 10.0, 0.3);
  EXPECT_TRUE(torch::allclose(gain->apply(x, rng), x * std::pow(10.0, -6.0 / 20)));
  std::string msg = user_error([] {
    Env bad("[[transforms.\"audio.wave\"]]\ntype = \"audio.noise\"\nsnr_db = [30.0, 10.0]\n");
    bad.transform("audio.wave");
  });
  EXPECT_NE(msg.find("snr_db must be [lo, hi] with lo <= hi"), std::string::npos) << msg;
}

TEST(Transforms, TimeShiftAndTimeMask) {
  sslab::Rng rng(1);
  torch::Tensor x = torch::arange(1, 101, torch::kFloat32);
  sslab::audio::TimeShift shift(10, false);
  for (int i = 0; i < 5; ++i) {
    torch::Tensor y = shift.apply(x, rng);
    int64_t zeros = (y == 0).sum().item<int64_t>();
    EXPECT_LE(zeros, 10);
    EXPECT_EQ(y.sum().item<double>() > 0, true);
    // The non-zero part is a contiguous run of x.
    torch::Tensor nz = y.masked_select(y != 0);
    EXPECT_TRUE(torch::equal(nz, torch::arange(nz[0].item<float>(), nz[0].item<float>() + nz.size(0))));
  }
  sslab::audio::TimeShift roll(10, true);
  EXPECT_EQ(roll.apply(x, rng).sum().item<double>(), x.sum().item<double>());
  sslab::audio::TimeMask mask(2, 8, 1.0);
  torch::Tensor m = mask.apply(x, rng);
  EXPECT_LE((m == 0).sum().item<int64_t>(), 16);
  EXPECT_TRUE(torch::equal(m.masked_select(m != 0), x.masked_select(m != 0)));
}

// A 1 kHz tone puts its energy in the mel band whose centre is nearest 1 kHz;
// frames are 1 + S / hop; the filterbank matches the HTK formula.
TEST(LogMel, ToneLandsInTheRightBand) {
  Env env("[[transforms.\"audio.wave\"]]\ntype = \"audio.logmel\"\nn_mels = 40\n");
  auto t = env.transform("audio.wave");
  sslab::Rng rng(0);
  torch::Tensor f = t->apply(tone(1000, 0.5), rng);
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{51, 40}));
  auto mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  // Band centres: n_mels + 2 equally spaced points on the mel scale, inner ones.
  int64_t best = 0;
  double best_d = 1e9;
  for (int64_t m = 0; m < 40; ++m) {
    double centre = mel(8000) * (m + 1) / 41.0;
    double d = std::abs(centre - mel(1000));
    if (d < best_d) best_d = d, best = m;
  }
  EXPECT_EQ(f.slice(0, 5, 45).mean(0).argmax().item<int64_t>(), best);
  // Filterbank: each inner FFT bin's weights sum to about 1 (triangles overlap by half).
  torch::Tensor fb = sslab::audio::mel_filterbank(400, 40, 16000, 0, 8000);
  EXPECT_EQ(fb.sizes(), (std::vector<int64_t>{201, 40}));
  EXPECT_NEAR(fb.sum(1)[100].item<double>(), 1.0, 1e-4);
  EXPECT_GE(fb.min().item<double>(), 0.0);
}

}  // namespace
