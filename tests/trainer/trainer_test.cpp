// The trainer end to end through the sslab command, on the template plugin's
// toy components: loss falls, seeding, schedule, accumulation, NaN stop,
// kill + resume, checkpoint format check; and the EMA target service.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "sslab/host/experiment.h"
#include "sslab/host/trainer.h"
#include "test_util.h"

namespace {

using sslab_test::metric;
using sslab_test::TempDir;

std::string recipe_text(const std::string& train_extra = "", const std::string& extra = "") {
  return R"(name = "toy"
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = 2048
[data.test]
type = "template.blobs"
size = 256
[encoders.main]
type = "template.mlp"
[[objectives]]
type = "template.reconstruct"
[train]
batch_size = 64
lr = 0.01
threads = 1
workers = 2
)" + train_extra + "\n[log]\nevery_steps = 1\nprogress = \"none\"\n" + extra;
}

sslab_test::RunResult train(const TempDir& dir, const std::string& recipe, const std::string& out,
                            const std::string& args = "") {
  std::string file = dir.write("recipe.toml", recipe);
  return sslab_test::run(sslab_test::sslab_cli() + " train " + file + " --out " + dir / out + " " + args);
}

TEST(Trainer, LossFallsAndRunFolderHoldsItsFiles) {
  TempDir dir;
  auto r = train(dir, recipe_text("steps = 60"), "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto loss = metric(dir / "run", "loss");
  ASSERT_EQ(loss.size(), 60u);
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  EXPECT_TRUE(sslab_test::fs::exists(dir / "run/recipe.toml"));
  EXPECT_TRUE(sslab_test::fs::exists(dir / "run/checkpoints/step-000000060.pt"));
  EXPECT_FALSE(sslab_test::fs::is_empty(dir / "run/tensorboard"));
  // The online probe trains alongside and beats chance (4 classes).
  EXPECT_GT(metric(dir / "run", "probe_acc").back(), 0.4);
}

TEST(Trainer, ProbeEveryNthStepLogsTheProbeOnlyWhereItRan) {
  TempDir dir;
  // Logged every step: the probe metric appears on steps 1, 5, 9, ... only.
  auto r = train(dir, recipe_text("steps = 60\nprobe_every = 4"), "every");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(metric(dir / "every", "loss").size(), 60u);
  auto acc = metric(dir / "every", "probe_acc");
  EXPECT_EQ(acc.size(), 15u);
  EXPECT_GT(acc.back(), 0.4);
  // Logged every 10 steps: each line averages the probe over the steps that
  // ran it, not over all 10 (which would read below its true accuracy).
  r = train(dir, recipe_text("steps = 60\nprobe_every = 4", "") + "", "every10", "--set log.every_steps=10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto acc10 = metric(dir / "every10", "probe_acc");
  ASSERT_EQ(acc10.size(), 6u);
  EXPECT_GT(acc10.back(), 0.4);
  EXPECT_LE(acc10.back(), 1.0);
}

TEST(Trainer, SameSeedSameLossesOtherSeedOtherLosses) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 15\nseed = 5"), "a").exit_code, 0);
  ASSERT_EQ(train(dir, recipe_text("steps = 15\nseed = 5"), "b", "--set train.workers=0").exit_code, 0);
  ASSERT_EQ(train(dir, recipe_text("steps = 15\nseed = 6"), "c").exit_code, 0);
  EXPECT_EQ(metric(dir / "a", "loss"), metric(dir / "b", "loss"));
  EXPECT_NE(metric(dir / "a", "loss"), metric(dir / "c", "loss"));
}

TEST(Trainer, WarmupThenCosineSchedule) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 40\nwarmup_steps = 10\nmin_lr = 0.001"), "run").exit_code, 0);
  auto lr = metric(dir / "run", "lr");
  ASSERT_EQ(lr.size(), 40u);
  EXPECT_NEAR(lr[0], 0.001, 1e-9);   // step 1 of 10 warmup steps
  EXPECT_NEAR(lr[9], 0.01, 1e-9);    // end of warmup: peak
  EXPECT_NEAR(lr[24], 0.001 + 0.5 * 0.009, 1e-9);  // half-way through the cosine
  EXPECT_NEAR(lr[39], 0.001, 1e-9);  // end: min_lr
}

TEST(Trainer, AccumulationMatchesOneLargeBatch) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 10\nprobe = false"), "one").exit_code, 0);
  ASSERT_EQ(train(dir, recipe_text("steps = 10\nprobe = false\naccumulate = 4"), "four").exit_code, 0);
  auto a = metric(dir / "one", "loss"), b = metric(dir / "four", "loss");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(a[i])) << "step " << i + 1;
}

TEST(Trainer, NonFiniteLossStopsNamingStepAndObjective) {
  TempDir dir;
  auto r = train(dir, recipe_text("steps = 20\nweight_decay = 0.0"), "run", "--set train.lr=1e30");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("objective 'template.reconstruct' gave a"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step "), std::string::npos) << r.err;
}

TEST(Trainer, OutFolderWithCheckpointsIsNotOverwritten) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 3"), "run").exit_code, 0);
  auto r = train(dir, recipe_text("steps = 3"), "run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already holds checkpoints; continue it with 'sslab train --resume"), std::string::npos) << r.err;
}

TEST(Trainer, KilledRunResumesToTheSameFinalLoss) {
  TempDir dir;
  std::string recipe = recipe_text("steps = 1200", "[checkpoint]\nevery_steps = 50\n");
  ASSERT_EQ(train(dir, recipe, "full").exit_code, 0);
  // The same run in the background, SIGKILLed after its first checkpoint.
  std::string file = dir.write("recipe.toml", recipe);
  std::string ckpt = sslab_test::train_and_kill_after_first_checkpoint(file + " --out " + dir / "killed", dir / "killed");
  ASSERT_FALSE(ckpt.empty());
  ASSERT_EQ(ckpt.find("step-000001200"), std::string::npos) << "the run finished before it was killed";
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "killed");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto full = metric(dir / "full", "loss"), resumed = metric(dir / "killed", "loss");
  ASSERT_EQ(resumed.size(), full.size());  // lines after the checkpoint were rewritten, not duplicated
  EXPECT_EQ(resumed.back(), full.back());
}

TEST(Trainer, NewerCheckpointFormatIsRefused) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 2"), "run").exit_code, 0);
  torch::serialize::OutputArchive out;
  out.write("format_version", torch::tensor({int64_t{99}}));
  out.save_to(dir / "run/checkpoints/step-000000099.pt");
  auto r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("checkpoint format 99 is newer than this sslab reads (1)"), std::string::npos) << r.err;
}

TEST(Trainer, ResumeOfAFolderThatIsNotARunIsAClearError) {
  TempDir dir;
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir.str());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir.str() + ": not a run folder (no recipe.toml)"), std::string::npos) << r.err;
}

TEST(Trainer, CheckpointOfAnotherModelIsAClearError) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 2"), "run").exit_code, 0);
  // Evaluating with a wider encoder than the one trained: the weights do not fit.
  auto r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --set encoders.main.hidden=32");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("step-000000002.pt: checkpoint 'model/encoders.main' does not fit the recipe's model"),
            std::string::npos)
      << r.err;
}

TEST(Trainer, EvalWithOverridesKeepsTheTrainingsEvalJson) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 4", "[eval]\nbaselines = false\n"), "run").exit_code, 0);
  std::string before = sslab_test::read_text(dir / "run/eval.json");
  ASSERT_NE(before.find("linear_probe"), std::string::npos);
  // --set: printed, not saved over the training's results.
  auto r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --set eval.knn=false");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("pass --out FILE to keep them"), std::string::npos) << r.err;
  EXPECT_EQ(sslab_test::read_text(dir / "run/eval.json"), before);
  // --out: saved there.
  r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --set eval.knn=false --out " +
                      dir / "other.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string other = sslab_test::read_text(dir / "other.json");
  EXPECT_NE(other.find("linear_probe"), std::string::npos);
  EXPECT_EQ(other.find("knn"), std::string::npos);
  EXPECT_EQ(sslab_test::read_text(dir / "run/eval.json"), before);
  // An unwritable --out is a clear error.
  r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --out " + dir / "no/such/dir/e.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no/such/dir/e.json: cannot write the evaluation results here"), std::string::npos) << r.err;
}

TEST(Trainer, EmaTargetFollowsTheOnlineNetwork) {
  TempDir dir;
  std::string file = dir.write("recipe.toml", recipe_text("steps = 1"));
  sslab::PluginHost host;
  host.load(std::string(SSLAB_PLUGIN_DIR) + "/libsslab-template.so");
  sslab::Experiment exp(sslab::Recipe::load(file), host);
  auto& ctx = exp.context();
  auto target = ctx.ema_target("main", {0.9});
  EXPECT_EQ(target, ctx.ema_target("main", {0.9}));  // one target per name
  auto online = ctx.encoder("main");
  auto before = target->named_parameters()["fc1.weight"].clone();
  EXPECT_TRUE(torch::equal(before, online->named_parameters()["fc1.weight"]));
  EXPECT_FALSE(target->named_parameters()["fc1.weight"].requires_grad());
  {
    torch::NoGradGuard g;
    for (auto& p : online->parameters()) p.add_(1.0);
  }
  sslab::update_ema_targets(ctx);
  EXPECT_TRUE(torch::allclose(target->named_parameters()["fc1.weight"], before + 0.1, 1e-5, 1e-6));
  std::string msg = sslab_test::user_error([&] { ctx.ema_target("mian", {0.9}, "recipe.toml:3:1"); });
  EXPECT_NE(msg.find("no encoder or head named 'mian' for an EMA target; did you mean 'main'?"), std::string::npos)
      << msg;
  msg = sslab_test::user_error([&] { ctx.ema_target("main", {0.9, "linear"}, "recipe.toml:3:1"); });
  EXPECT_NE(msg.find("recipe.toml:3:1: EMA schedule must be \"constant\" or \"cosine\", got \"linear\""),
            std::string::npos)
      << msg;
  msg = sslab_test::user_error([&] { ctx.ema_target("main", {1.5}, "recipe.toml:3:1"); });
  EXPECT_NE(msg.find("recipe.toml:3:1: EMA momentum must be in [0, 1], got 1.5"), std::string::npos) << msg;
}

}  // namespace
