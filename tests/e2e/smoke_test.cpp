// Every smoke recipe trains end to end through the sslab command.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "sslab/host/trainer.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using sslab_test::metric;
using sslab_test::TempDir;

std::vector<std::string> smoke_recipes() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke"))
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Smoke : public ::testing::TestWithParam<std::string> {};

TEST_P(Smoke, LossFallsAndProbesBeatChance) {
  TempDir dir;
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train " + GetParam() + " --out " + dir / "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto loss = metric(dir / "run", "loss");
  ASSERT_GE(loss.size(), 2u);
  EXPECT_LT(loss.back(), 0.9 * loss.front()) << "loss did not fall";
  if (!fs::exists(dir / "run/eval.json")) return;
  nlohmann::json eval = sslab_test::read_json(dir / "run/eval.json");
  if (eval.contains("linear_probe")) {
    // Smoke datasets have 4 (template) or 10 (Fashion-MNIST) balanced classes.
    double chance = GetParam().find("template") != std::string::npos ? 0.25 : 0.1;
    EXPECT_GT(eval.at("linear_probe").at("accuracy").get<double>(), 2 * chance);
    EXPECT_GT(eval.at("knn").at("accuracy").get<double>(), 2 * chance);
  }
  // Cross-modal recipes: Recall@5 in both directions beats twice its chance.
  for (const char* name : {"retrieval/a_to_b", "retrieval/b_to_a"}) {
    if (!eval.contains(name)) continue;
    const nlohmann::json& r = eval.at(name);
    EXPECT_GT(r.at("recall@5").get<double>(), 2 * r.at("chance@5").get<double>()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Recipes, Smoke, ::testing::ValuesIn(smoke_recipes()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = fs::path(info.param).stem().string();
                           for (auto& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

// The MAE smoke run, SIGKILLed after its first checkpoint and resumed with
// --resume, ends with the same loss as an uninterrupted run.
TEST(Resume, KilledVisionRunEndsWithTheSameLoss) {
  TempDir dir;
  std::string recipe = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/vision_mae.toml";
  std::string args = " --no-eval --set train.steps=60 --set checkpoint.every_steps=10 --set log.every_steps=5";
  auto full = sslab_test::run(sslab_test::sslab_cli() + " train " + recipe + " --out " + dir / "full" + args);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  std::string ckpt =
      sslab_test::train_and_kill_after_first_checkpoint(recipe + " --out " + dir / "killed" + args, dir / "killed");
  ASSERT_FALSE(ckpt.empty());
  ASSERT_EQ(ckpt.find("step-000000060"), std::string::npos) << "the run finished before it was killed";
  auto resumed = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "killed" + " --no-eval");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("(resumed at step "), std::string::npos) << resumed.out;
  auto a = metric(dir / "full", "loss"), b = metric(dir / "killed", "loss");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.back(), b.back());
}

}  // namespace
