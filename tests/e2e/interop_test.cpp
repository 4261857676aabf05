// Interop end to end: `sslab export` in both formats read back in Python
// (Debian's python3-torch, no sslab) by tools/python/sslab_encoders, whose
// encoders reproduce sslab's embeddings; `sslab embed` output against a
// reference kNN; and `init` from an export giving the loss of a resumed run.
#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using sslab_test::metric;
using sslab_test::run;
using sslab_test::TempDir;

const std::string kPython = "/usr/bin/python3 " + std::string(SSLAB_SOURCE_DIR) + "/tests/e2e/interop_check.py";

// A small SimCLR run on 64 Fashion-MNIST images with the first-party CNN.
// One batch of the same 64 images each step, no augmentation: every step
// sees the same samples, so a step's loss depends on the weights only.
std::string cnn_recipe(const std::string& extra = "") {
  return R"(name = "interop-cnn"
[plugins]
load = ["vision", "ssl"]
[data.train]
type = "vision.fashion_mnist"
split = "train"
limit = 64
[data.test]
type = "vision.fashion_mnist"
split = "test"
limit = 128
[views]
image = 2
[encoders.image]
type = "vision.cnn"
channels = [8, 16]
stem_pool = true
input_mean = [0.286]
input_std = [0.353]
[heads.proj]
type = "ssl.mlp"
encoder = "image"
hidden = [32]
out_dim = 16
[[objectives]]
type = "ssl.infonce"
encoder = "image"
projector = "proj"
temperature = 0.2
[train]
steps = 4
batch_size = 64
lr = 0.01
seed = 0
threads = 1
workers = 0
probe = false
[log]
every_steps = 1
[checkpoint]
every_steps = 2
keep_last = 5
[eval]
probe_epochs = 2
random_encoder = false
raw_baseline = false
)" + extra;
}

void export_and_embed(const std::string& run_dir) {
  auto e = run(sslab_test::sslab_cli() + " export " + run_dir + " --out " + run_dir + "/export");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  e = run(sslab_test::sslab_cli() + " export " + run_dir + " --format torch --out " + run_dir + "/export_pt");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  e = run(sslab_test::sslab_cli() + " embed " + run_dir + " --limit 32 --batch-size 32 --with-inputs --out " + run_dir +
          "/emb.safetensors");
  ASSERT_EQ(e.exit_code, 0) << e.err;
}

// Every first-party encoder (vision.vit, vision.cnn, text.transformer, the
// log-mel CPC encoder), exported and rebuilt in plain PyTorch, gives sslab's
// embeddings of the same inputs within 1e-5 relative error.
TEST(Interop, ExportedEncodersRebuildInPython) {
  TempDir dir;
  const std::string smoke = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/";
  std::vector<std::string> runs;
  for (const char* recipe : {"vision_mae", "text_mlm", "audio_cpc"}) {
    std::string out = dir / recipe;
    auto r = run(sslab_test::sslab_cli() + " train " + smoke + recipe + ".toml --no-eval --set train.steps=3 --out " + out);
    ASSERT_EQ(r.exit_code, 0) << recipe << ": " << r.err;
    runs.push_back(out);
  }
  const std::string recipe = dir.write("cnn.toml", cnn_recipe());
  auto r = run(sslab_test::sslab_cli() + " train " + recipe + " --no-eval --out " + dir / "cnn");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  runs.push_back(dir / "cnn");
  std::string args;
  for (const auto& out : runs) {
    ASSERT_NO_FATAL_FAILURE(export_and_embed(out));
    args += " " + out;
  }
  // What the export says of itself.
  nlohmann::json index = sslab_test::read_json(dir / "cnn/export/sslab_export.json");
  EXPECT_EQ(index.at("format"), "sslab-export");
  EXPECT_EQ(index.at("step"), 4);
  EXPECT_EQ(index.at("recipe_sha256").get<std::string>().size(), 64u);
  const nlohmann::json& image = index.at("components").at("encoders.image");
  EXPECT_EQ(image.at("type"), "vision.cnn");
  EXPECT_EQ(image.at("embed_dim"), 16);
  EXPECT_EQ(image.at("settings").at("channels"), nlohmann::json::array({8, 16}));
  EXPECT_EQ(image.at("settings").at("pool"), "mean");  // a default the recipe left out
  EXPECT_TRUE(index.at("components").contains("heads.proj"));
  EXPECT_TRUE(fs::exists(dir / "cnn/export/heads.proj.safetensors"));
  auto py = run(kPython + " encoders" + args);
  EXPECT_EQ(py.exit_code, 0) << py.out << py.err;
  std::cout << py.out;
}

// `sslab embed` rows, fed to a reference kNN in numpy, give the kNN figure of
// sslab's own evaluation; and a run that starts from an export of step 2
// (encoder and head, through `init`) has the first-step loss that the run it
// came from has at step 3 when resumed from step 2.
TEST(Interop, EmbedMatchesKnnAndInitMatchesResume) {
  TempDir dir;
  const std::string recipe = dir.write("cnn.toml", cnn_recipe());
  const std::string a = dir / "a";
  auto r = run(sslab_test::sslab_cli() + " train " + recipe + " --out " + a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json eval = sslab_test::read_json(a + "/eval.json");
  const double knn = eval.at("knn").at("accuracy").get<double>();
  const int k = eval.at("knn").at("k").get<int>();

  r = run(sslab_test::sslab_cli() + " embed " + a + " --split train --out " + dir / "train.npy");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run(sslab_test::sslab_cli() + " embed " + a + " --split test --out " + dir / "test.npy");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("test.label.npy"), std::string::npos) << r.out;
  auto py = run(kPython + " knn " + dir / "train.npy" + " " + dir / "test.npy" + " " + std::to_string(k) + " " +
                std::to_string(knn));
  EXPECT_EQ(py.exit_code, 0) << py.out << py.err;
  std::cout << py.out;

  // Resume the run from its step-2 checkpoint: the loss at step 3.
  fs::copy(a, dir / "resumed", fs::copy_options::recursive);
  for (const auto& f : fs::directory_iterator(dir / "resumed/checkpoints"))
    if (f.path().filename().string().find("step-000000004") == 0) fs::remove(f.path());
  r = run(sslab_test::sslab_cli() + " train --resume " + dir / "resumed" + " --no-eval");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<double> resumed = metric(dir / "resumed", "loss");
  ASSERT_EQ(resumed.size(), 4u);

  // Export step 2; a fresh run starts its encoder and head from it.
  r = run(sslab_test::sslab_cli() + " export " + a + " --step 2 --out " + dir / "export2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = cnn_recipe();
  text.replace(text.find("[encoders.image]\n"), std::string("[encoders.image]\n").size(),
               "[encoders.image]\ninit = \"export2\"\n");
  text.replace(text.find("[heads.proj]\n"), std::string("[heads.proj]\n").size(), "[heads.proj]\ninit = \"export2\"\n");
  const std::string from_export = dir.write("from_export.toml", text);
  r = run(sslab_test::sslab_cli() + " train " + from_export + " --no-eval --set train.steps=1 --out " + dir / "b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Both the encoder and the head say what they loaded.
  EXPECT_NE(r.err.find("encoders.image.init: 36 of 36 tensors from " + dir / "export2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("heads.proj.init: "), std::string::npos) << r.err;
  std::vector<double> b = metric(dir / "b", "loss");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NEAR(b[0], resumed[2], 1e-5 * std::abs(resumed[2])) << "step 3 resumed: " << resumed[2] << ", from the export: " << b[0];
  // A fresh run from scratch starts elsewhere (the check is not vacuous).
  EXPECT_GT(std::abs(metric(a, "loss")[0] - resumed[2]), 1e-3);

  // The same from the run folder itself (its newest checkpoint, step 4)
  // and from a single file of the export.
  std::string from_run = cnn_recipe();
  from_run.replace(from_run.find("[encoders.image]\n"), std::string("[encoders.image]\n").size(),
                   "[encoders.image]\ninit = \"a\"\n");
  r = run(sslab_test::sslab_cli() + " train " + dir.write("from_run.toml", from_run) +
          " --no-eval --set train.steps=1 --out " + dir / "c");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tensors from " + a), std::string::npos) << r.err;
}

// A cut or lying safetensors file, or weights of another shape, given to
// `init` is a clear error naming the recipe key and the file (exit 2).
TEST(Interop, BadInitFilesAreClearErrors) {
  TempDir dir;
  const std::string a = dir / "a";
  auto r = run(sslab_test::sslab_cli() + " train " + dir.write("cnn.toml", cnn_recipe()) +
               " --no-eval --set train.steps=2 --out " + a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run(sslab_test::sslab_cli() + " export " + a + " --out " + dir / "export");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir / "export/encoders.image.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  dir.write("cut.safetensors", bytes.substr(0, bytes.size() / 2));
  std::string lying = bytes;
  lying[1] = static_cast<char>(static_cast<unsigned char>(lying[1]) + 1);  // a header 256 bytes longer
  dir.write("lying.safetensors", lying);
  auto train_with = [&](const std::string& line, const std::string& channels = "[8, 16]") {
    std::string text = cnn_recipe();
    text.replace(text.find("[encoders.image]\n"), std::string("[encoders.image]\n").size(), "[encoders.image]\n" + line + "\n");
    text.replace(text.find("channels = [8, 16]"), std::string("channels = [8, 16]").size(), "channels = " + channels);
    return run(sslab_test::sslab_cli() + " train " + dir.write("r.toml", text) + " --no-eval --set train.steps=1 --out " +
               dir / "bad");
  };
  for (const char* file : {"cut.safetensors", "lying.safetensors"}) {
    r = train_with(std::string("init = \"") + file + "\"");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("r.toml:15:8: encoders.image.init: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(dir / file + ": not a valid safetensors file"), std::string::npos) << r.err;
    fs::remove_all(dir / "bad");
  }
  // Weights of a wider CNN: the tensor, both shapes and the file.
  r = train_with("init = \"export/encoders.image.safetensors\"", "[8, 32]");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("tensor 'stages.1.bn1.bias' is [16] in " + dir / "export/encoders.image.safetensors" + " but [32] in the model"),
            std::string::npos) << r.err;
}

}  // namespace
