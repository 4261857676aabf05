// Moving Fashion-MNIST (determinism, frame count, physics) and the
// generator; the video.clips dataset over encoded files; the loader's
// skip/fail policy on bad files.
#include <filesystem>
#include <fstream>

#include <sslab/host/loader.h>

#include "datasets.h"
#include "moving_fmnist.h"
#include "video_test_util.h"

namespace {

namespace fs = std::filesystem;
using namespace sslab::video;
using sslab_test::TempDir;

const char* kFmnist = "/usr/share/datasets/fashion-mnist";

#define REQUIRE_FMNIST()                                                 \
  if (!fs::exists(std::string(kFmnist) + "/train-images-idx3-ubyte.gz")) \
  GTEST_SKIP() << "dataset-fashion-mnist is not installed"

// A tiny item source: 4 images of 28x28, class = index.
ItemSource tiny_source() {
  ItemSource s;
  s.images = torch::zeros({4, 28, 28}, torch::kUInt8);
  for (int64_t i = 0; i < 4; ++i)
    s.images[i].narrow(0, 4, 20).narrow(1, 4, 20).fill_(static_cast<uint8_t>(60 * (i + 1)));
  s.labels = torch::arange(4, torch::kInt64);
  return s;
}

TEST(VideoMovingFmnist, ClipsAreDeterministicAndHaveTheirFrameCount) {
  ItemSource src = tiny_source();
  MovingOptions o;
  MovingClip a = make_moving_clip(src, 7, 3, o), b = make_moving_clip(src, 7, 3, o);
  ASSERT_EQ(a.frames.sizes(), (std::vector<int64_t>{20, 1, 64, 64}));
  EXPECT_TRUE(torch::equal(a.frames, b.frames));
  EXPECT_EQ(a.classes, b.classes);
  ASSERT_EQ(a.classes.size(), 2u);
  for (size_t k = 0; k < 2; ++k) EXPECT_EQ(a.classes[k], src.labels[a.sources[k]].item<int64_t>());
  EXPECT_FALSE(torch::equal(a.frames, make_moving_clip(src, 7, 4, o).frames));
  EXPECT_FALSE(torch::equal(a.frames, make_moving_clip(src, 8, 3, o).frames));
  o.frames = 7;
  EXPECT_EQ(make_moving_clip(src, 7, 3, o).frames.size(0), 7);
}

TEST(VideoMovingFmnist, OneItemMovesAt3Point6PixelsPerFrameAndStaysInside) {
  ItemSource src = tiny_source();
  MovingOptions o;
  o.items = 1;
  o.frames = 30;
  for (int64_t idx = 0; idx < 5; ++idx) {
    MovingClip c = make_moving_clip(src, 1, idx, o);
    // The item's bright square: its centre of mass per frame.
    std::vector<double> cx, cy;
    for (int64_t t = 0; t < o.frames; ++t) {
      torch::Tensor f = c.frames[t][0].to(torch::kFloat64);
      const double mass = f.sum().item<double>();
      ASSERT_GT(mass, 0) << "the item left the canvas";
      // The whole square (20x20 of value v) is always visible: nothing is clipped.
      EXPECT_DOUBLE_EQ(mass, 400.0 * 60 * (c.sources[0] + 1));
      cx.push_back((f.sum(0) * torch::arange(64, torch::kFloat64)).sum().item<double>() / mass);
      cy.push_back((f.sum(1) * torch::arange(64, torch::kFloat64)).sum().item<double>() / mass);
    }
    // Steps are at most 3.6 px per axis (integer positions: +1 of rounding),
    // and the speed is 3.6 px/frame away from the edges.
    double max_step = 0;
    for (int64_t t = 1; t < o.frames; ++t)
      max_step = std::max(max_step, std::hypot(cx[t] - cx[t - 1], cy[t] - cy[t - 1]));
    EXPECT_LE(max_step, 3.6 + 1.5);
    EXPECT_GE(max_step, 2.0);
  }
}

TEST(VideoMovingFmnist, InMemoryDatasetGivesSamples) {
  REQUIRE_FMNIST();
  MovingDatasetOptions o;
  o.root = kFmnist;
  o.split = "test";
  o.size = 4;
  o.clip.items = 1;
  MovingFashionMnist data(o);
  EXPECT_EQ(data.num_classes(), 10);
  auto s = data.get(2);
  EXPECT_EQ(s.at("video.frames").sizes(), (std::vector<int64_t>{20, 1, 64, 64}));
  EXPECT_LE(s.at("video.frames").max().item<float>(), 1.0f);
  EXPECT_EQ(s.at("label.items").sum().item<float>(), 1.0f);
  EXPECT_EQ(s.at("label.items")[s.at("label").item<int64_t>()].item<float>(), 1.0f);
}

std::string gen_cli() { return std::string(SSLAB_BUILD_DIR) + "/bin/sslab-video-gen"; }

TEST(VideoGenerator, WritesDeterministicH264FilesAndAManifest) {
  REQUIRE_FMNIST();
  TempDir dir;
  const std::string args = " --train 6 --test 3 --seed 5 --jobs 2 --root " + std::string(kFmnist);
  auto a = sslab_test::run(gen_cli() + " --out " + dir / "a" + args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = sslab_test::run(gen_cli() + " --out " + dir / "b" + args + " --jobs 1");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string manifest = sslab_test::read_text(dir / "a/manifest.tsv");
  EXPECT_EQ(manifest, sslab_test::read_text(dir / "b/manifest.tsv"));
  EXPECT_EQ(std::count(manifest.begin(), manifest.end(), '\n'), 1 + 6 + 3);
  EXPECT_EQ(manifest.rfind("path\tsplit\tframes\tclasses\tsources\n", 0), 0u);
  for (const char* f : {"train/000000.mp4", "train/000005.mp4", "test/000002.mp4"})
    EXPECT_EQ(sslab_test::read_text(dir / ("a/" + std::string(f))),
              sslab_test::read_text(dir / ("b/" + std::string(f))))
        << f << " differs between two runs";

  // The files decode to 20 frames of 64x64 H.264, close to the clip made in memory.
  VideoReader reader(dir / "a/test/000002.mp4", ReadOptions{});
  EXPECT_EQ(reader.codec_name(), "h264");
  EXPECT_EQ(reader.frame_count(), 20);
  torch::Tensor decoded = reader.read_all();
  ASSERT_EQ(decoded.sizes(), (std::vector<int64_t>{20, 1, 64, 64}));
  ItemSource test_src = ItemSource::load(kFmnist, "test");
  MovingClip clip = make_moving_clip(test_src, 5 + 0x7e57, 2, MovingOptions{});
  double mae = (decoded.to(torch::kFloat32) - clip.frames.to(torch::kFloat32)).abs().mean().item<double>();
  EXPECT_LT(mae, 4.0) << "mean absolute error in grey levels";

  // video.clips reads the manifest: splits, classes, 20 frames.
  ClipsOptions co;
  co.manifest = dir / "a/manifest.tsv";
  co.split = "test";
  co.classes = 10;
  ClipsDataset test(co);
  EXPECT_EQ(test.size(), 3);
  auto s = test.get(2);
  EXPECT_EQ(s.at("video.frames").sizes(), (std::vector<int64_t>{20, 1, 64, 64}));
  torch::Tensor items = torch::zeros({10});
  for (int64_t c : clip.classes) items[c] = 1;
  EXPECT_TRUE(torch::equal(s.at("label.items"), items));
  EXPECT_FALSE(s.count("label")) << "two-item clips have no single label";
}

TEST(VideoGenerator, BadArgumentsExitWithCode2) {
  auto r = sslab_test::run(gen_cli() + " --train 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--out is required"), std::string::npos) << r.err;
  TempDir dir;
  r = sslab_test::run(gen_cli() + " --out " + dir / "x" + " --train 1 --test 0 --root " + dir / "nothing");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("dataset-fashion-mnist"), std::string::npos) << r.err;
}

// A manifest of pattern clips (class = index % 3) plus bad files.
std::string pattern_manifest(const TempDir& dir, bool with_bad) {
  std::string m = "path\tsplit\tclasses\n";
  for (int i = 0; i < 6; ++i) {
    video_test::write_pattern(dir / ("v" + std::to_string(i) + ".mp4"), "libx264", 40);
    m += "v" + std::to_string(i) + ".mp4\ttrain\t" + std::to_string(i % 3) + "\n";
  }
  if (with_bad) {
    dir.write("empty.mp4", "");
    dir.write("text.mp4", "plain text, not a video\n");
    m += "empty.mp4\ttrain\t0\ntext.mp4\ttrain\t1\n";
  }
  return dir.write("manifest.tsv", m);
}

TEST(VideoClips, RandomStartsStrideAndSingleItemLabels) {
  TempDir dir;
  ClipsOptions o;
  o.manifest = pattern_manifest(dir, false);
  o.frames = 5;
  o.stride = 3;
  o.start = "random";
  o.clips_per_video = 3;
  o.seed = 1;
  ClipsDataset data(o);
  EXPECT_EQ(data.size(), 18);
  EXPECT_EQ(data.num_classes(), 3) << "single-item clips have a label";
  std::set<int64_t> starts;
  for (int64_t i = 0; i < data.size(); ++i) {
    auto s = data.get(i);
    torch::Tensor frames = (s.at("video.frames") * 255).round().to(torch::kUInt8);
    ASSERT_EQ(frames.sizes(), (std::vector<int64_t>{5, 1, 48, 64}));
    const int64_t first = video_test::pattern_index(frames[0]);
    for (int64_t t = 1; t < 5; ++t) EXPECT_EQ(video_test::pattern_index(frames[t]), first + 3 * t);
    EXPECT_LE(first + 12, 39);
    EXPECT_EQ(s.at("label").item<int64_t>(), (i / 3) % 3);
    starts.insert(first);
  }
  EXPECT_GT(starts.size(), 4u) << "random starts should vary";
  // Deterministic per index.
  EXPECT_TRUE(torch::equal(data.get(4).at("video.frames"), data.get(4).at("video.frames")));
}

TEST(VideoClips, LoaderSkipsOrFailsOnBadFilesByPolicy) {
  TempDir dir;
  ClipsOptions o;
  o.manifest = pattern_manifest(dir, true);
  o.frames = 4;
  auto data = std::make_shared<ClipsDataset>(o);
  ASSERT_EQ(data->size(), 8);
  sslab::LoaderOptions lo;
  lo.batch_size = 8;
  lo.workers = 2;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.skip_bad_samples = true;
  {
    sslab::Loader loader(data, lo);
    sslab::Batch b = loader.next();
    EXPECT_EQ(b.size, 6);
    EXPECT_EQ(loader.skipped(), 2);
  }
  lo.skip_bad_samples = false;
  sslab::Loader failing(data, lo);
  std::string msg = sslab_test::user_error([&] { failing.next(); });
  EXPECT_TRUE(msg.find("empty.mp4") != std::string::npos || msg.find("text.mp4") != std::string::npos) << msg;
}

TEST(VideoClips, RecipeErrorsNameTheKey) {
  std::string msg = sslab_test::user_error([] {
    video_test::Env env(R"(
[data.train]
type = "video.clips"
manifest = "/nonexistent/manifest.tsv"
)");
    env.dataset("train");
  });
  EXPECT_NE(msg.find("video_test.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("manifest"), std::string::npos) << msg;
  msg = sslab_test::user_error([] {
    video_test::Env env(R"(
[data.train]
type = "video.clips"
manifest = "m.tsv"
pixel_format = "yuv"
)");
    env.dataset("train");
  });
  EXPECT_NE(msg.find("pixel_format"), std::string::npos) << msg;
}

}  // namespace
