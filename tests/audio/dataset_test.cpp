// audio.manifest and audio.synthetic_voices built through the plugin.
#include <filesystem>
#include <set>

#include <sslab/host/loader.h>

#include "audio_test_util.h"
#include "datasets.h"

namespace {

using audio_test::Env;
using audio_test::sine;
using audio_test::write_sound;
using sslab_test::TempDir;
using sslab_test::user_error;

// A manifest of 12 short clips: speakers a/b/c, words x/y; clip i lasts
// (i + 1) * 0.05 s at 22,050 Hz stereo.
std::string make_manifest(const TempDir& dir, bool split_column) {
  std::string text = split_column ? "path\tspeaker\tword\tsplit\n" : "path\tspeaker\tword\n";
  for (int i = 0; i < 12; ++i) {
    std::string name = "clips/c" + std::to_string(i) + ".wav";
    std::filesystem::create_directories(dir.path() / "clips");
    auto tone = sine(200 + 50 * i, (i + 1) * 0.05, 22050);
    std::vector<float> stereo;
    for (float s : tone) stereo.insert(stereo.end(), {s, s});
    write_sound(dir / name, stereo, 2, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    text += name + "\t" + std::string(1, static_cast<char>('a' + i % 3)) + "\t" + (i % 2 ? "y" : "x");
    if (split_column) text += i % 4 == 3 ? "\ttest" : "\ttrain";
    text += "\n";
  }
  return dir.write("manifest.tsv", text);
}

TEST(Manifest, SplitColumnLabelsAndResampling) {
  TempDir dir;
  std::string manifest = make_manifest(dir, true);
  Env env("[data.train]\ntype = \"audio.manifest\"\nmanifest = \"" + manifest +
          "\"\nlabel = \"speaker\"\n[data.test]\ntype = \"audio.manifest\"\nmanifest = \"" + manifest +
          "\"\nsplit = \"test\"\nlabel = \"word\"\nseconds = 0.1\ncrop = \"center\"\n");
  auto train = env.dataset("train");
  auto test = env.dataset("test");
  ASSERT_EQ(train->size(), 9);
  ASSERT_EQ(test->size(), 3);
  EXPECT_EQ(train->num_classes(), 3);
  EXPECT_EQ(test->num_classes(), 2);
  auto s = train->get(1);  // clip 1: 0.1 s, speaker b, word y
  EXPECT_EQ(s.at("audio.wave").size(0), 1600);
  EXPECT_EQ(s.at("label").item<int64_t>(), 1);
  EXPECT_EQ(s.at("label.speaker").item<int64_t>(), 1);
  EXPECT_EQ(s.at("label.word").item<int64_t>(), 1);
  auto t = test->get(2);  // clip 11: 0.6 s cropped to 0.1 s, word y
  EXPECT_EQ(t.at("audio.wave").size(0), 1600);
  EXPECT_EQ(t.at("label").item<int64_t>(), 1);
  // Variable lengths are padded by the loader, with lengths and a mask.
  auto batch = sslab::collate({train->get(0), train->get(1)});
  EXPECT_EQ(batch.at("audio.wave").size(1), 1600);
  EXPECT_EQ(batch.at("audio.wave.length")[0].item<int64_t>(), 800);
  EXPECT_FALSE(batch.at("audio.wave.mask")[0][900].item<bool>());
}

TEST(Manifest, SeededStratifiedSplitIsDisjointAndStable) {
  TempDir dir;
  std::string manifest = make_manifest(dir, false);
  auto paths = [&](const std::string& split, int seed) {
    sslab::audio::ManifestOptions o;
    o.manifest = manifest;
    o.split = split;
    o.label = "speaker";
    o.test_fraction = 0.25;
    o.split_seed = static_cast<uint64_t>(seed);
    sslab::audio::ManifestDataset d(o);
    std::set<std::string> out;
    for (int64_t i = 0; i < d.size(); ++i) out.insert(d.path(i));
    return out;
  };
  auto tr = paths("train", 1), te = paths("test", 1);
  EXPECT_EQ(tr.size(), 9u);
  EXPECT_EQ(te.size(), 3u);  // one per speaker (4 clips each, 25%)
  for (const auto& p : te) EXPECT_EQ(tr.count(p), 0u) << p;
  EXPECT_EQ(te, paths("test", 1));
  bool differs = false;
  for (int seed = 2; seed < 6; ++seed) differs = differs || paths("test", seed) != te;
  EXPECT_TRUE(differs) << "the split does not depend on split_seed";
}

TEST(Manifest, ErrorsNameTheFileAndTheColumn) {
  TempDir dir;
  std::string manifest = make_manifest(dir, true);
  std::string msg = user_error([&] {
    Env env("[data.train]\ntype = \"audio.manifest\"\nmanifest = \"" + manifest + "\"\nlabel = \"speakr\"\n");
    env.dataset("train");
  });
  EXPECT_NE(msg.find("no label column 'speakr'; the manifest has: speaker, word"), std::string::npos) << msg;
  std::string bad = dir.write("bad.tsv", "file\tspeaker\nx.wav\ta\n");
  msg = user_error([&] {
    Env env("[data.train]\ntype = \"audio.manifest\"\nmanifest = \"" + bad + "\"\n");
    env.dataset("train");
  });
  EXPECT_NE(msg.find("bad.tsv:1: the header must start with the column 'path'"), std::string::npos) << msg;
}

// A corrupt clip in the manifest: with the skip policy the loader skips and
// counts it; without, the error names the file.
TEST(Manifest, CorruptClipFollowsTheLoaderPolicy) {
  TempDir dir;
  write_sound(dir / "good.wav", sine(300, 0.1, 16000), 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  dir.write("bad.wav", "RIFF garbage that is not a wave file");
  std::string manifest =
      dir.write("m.tsv", "path\tspeaker\tsplit\ngood.wav\ta\ttrain\nbad.wav\tb\ttrain\ngood.wav\ta\ttrain\n");
  sslab::audio::ManifestOptions o;
  o.manifest = manifest;
  auto ds = std::make_shared<sslab::audio::ManifestDataset>(o);
  sslab::LoaderOptions lo;
  lo.batch_size = 3;
  lo.workers = 0;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.skip_bad_samples = true;
  sslab::Loader skip(ds, lo);
  auto batch = skip.next();
  EXPECT_EQ(batch.size, 2);
  EXPECT_EQ(skip.skipped(), 1);
  lo.skip_bad_samples = false;
  sslab::Loader fail(ds, lo);
  std::string msg = user_error([&] { fail.next(); });
  EXPECT_NE(msg.find(dir / "bad.wav"), std::string::npos) << msg;
}

// on_error = "skip" holds in every path that reads a split: training, the
// [eval] probes, a plugin's evaluator and sslab eval; the end of the run
// names the files and lists them in the run folder.
TEST(Manifest, SkipPolicyHoldsInTrainingAndEveryEvaluation) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "clips");
  std::string text = "path\tspeaker\tsplit\n";
  for (int i = 0; i < 24; ++i) {
    std::string name = "clips/c" + std::to_string(i) + ".wav";
    write_sound(dir / name, sine(i % 2 ? 600 : 200, 0.5, 16000), 1, 16000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    text += name + "\t" + (i % 2 ? "b" : "a") + (i % 4 == 3 ? "\ttest\n" : "\ttrain\n");
  }
  std::string manifest = dir.write("manifest.tsv", text);
  dir.write("clips/c1.wav", "RIFF this train clip is not a wave file");
  dir.write("clips/c3.wav", "RIFF nor is this test clip");
  auto split = [&](const std::string& name) {
    return "[data." + name + "]\ntype = \"audio.manifest\"\nmanifest = \"" + manifest + "\"\nsplit = \"" + name +
           "\"\nlabel = \"speaker\"\nseconds = 0.4\non_error = \"skip\"\n";
  };
  std::string recipe = dir.write(
      "r.toml", "name = \"skip\"\n[plugins]\nload = [\"audio\"]\n" + split("train") + split("test") +
                    "[encoders.audio]\ntype = \"audio.cpc_encoder\"\nchannels = 16\ncontext_dim = 16\n"
                    "features = \"logmel\"\n[[objectives]]\ntype = \"audio.cpc\"\nencoder = \"audio\"\n"
                    "prediction_steps = 2\nnegatives = 4\n[[evaluators]]\ntype = \"audio.label_probes\"\n"
                    "labels = [\"label.speaker\"]\nprobe_epochs = 5\n[train]\nsteps = 4\nbatch_size = 6\n"
                    "threads = 1\nworkers = 1\n[log]\nprogress = \"none\"\n[eval]\nraw_baseline = false\n"
                    "probe_epochs = 5\n");
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train " + recipe + " --out " + dir / "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 2 unreadable samples (on_error = \"skip\"; test: 1, train: 1)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(dir / "clips/c1.wav"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir / "clips/c3.wav"), std::string::npos) << r.err;
  std::string listed = sslab_test::read_text(dir / "run/skipped.tsv");
  EXPECT_NE(listed.find("train\t1\t" + dir / "clips/c1.wav"), std::string::npos) << listed;
  EXPECT_NE(listed.find("test\t0\t" + dir / "clips/c3.wav"), std::string::npos) << listed;
  auto results = sslab_test::read_json(dir / "run/eval.json");
  EXPECT_TRUE(results.contains("linear_probe")) << results.dump();
  EXPECT_EQ(sslab_test::metric(dir / "run", "skipped_samples").back(), 1.0);  // 3 batches an epoch read every train clip
  auto e = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("skipped 2 unreadable samples"), std::string::npos) << e.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "run/skipped_eval.tsv"));
  // Under "fail" the same test clip stops the evaluation, naming it.
  auto f = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --set data.test.on_error=\"fail\"");
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_NE(f.err.find(dir / "clips/c3.wav"), std::string::npos) << f.err;
}

TEST(SyntheticVoices, DeterministicLabelledAndSeeded) {
  Env env(
      "[data.train]\ntype = \"audio.synthetic_voices\"\nsize = 8\nvoices = 4\nseconds = 0.25\n"
      "[data.test]\ntype = \"audio.synthetic_voices\"\nsize = 8\nvoices = 4\nseconds = 0.25\nseed = 1\n");
  auto tr = env.dataset("train");
  auto te = env.dataset("test");
  EXPECT_EQ(tr->num_classes(), 4);
  auto a = tr->get(5), b = tr->get(5), c = te->get(5);
  EXPECT_EQ(a.at("audio.wave").size(0), 4000);
  EXPECT_TRUE(torch::equal(a.at("audio.wave"), b.at("audio.wave")));
  EXPECT_FALSE(torch::equal(a.at("audio.wave"), c.at("audio.wave")));
  EXPECT_EQ(a.at("label").item<int64_t>(), 1);
  EXPECT_EQ(c.at("label.speaker").item<int64_t>(), 1);
}

}  // namespace
