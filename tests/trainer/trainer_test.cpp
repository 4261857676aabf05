// The trainer end to end through the sslab command, on the template plugin's
// toy components: loss falls, seeding, schedule, accumulation, NaN stop,
// kill + resume, checkpoint format check; and the EMA target service.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/signals.h"
#include "sslab/host/trainer.h"
#include "run_weights.h"
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

// SIGTERM mid-epoch: the run finishes its step, writes a checkpoint, says how
// to resume and exits 75; resumed, it ends with the uninterrupted run's loss
// and weights, bit for bit.
TEST(Trainer, SigtermStopsWithACheckpointAndTheResumedRunIsBitExact) {
  TempDir dir;
  std::string recipe = recipe_text("steps = 3000");  // 32 batches an epoch: stopped mid-epoch
  ASSERT_EQ(train(dir, recipe, "full", "--no-eval").exit_code, 0);
  std::string file = dir.write("recipe.toml", recipe);
  sslab_test::Background run(sslab_test::sslab_cli() + " train " + file + " --no-eval --out " + dir / "stopped");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (sslab_test::metric_lines(dir / "stopped") < 45 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  run.signal(SIGTERM);
  auto r = run.wait();
  ASSERT_EQ(r.exit_code, sslab::kExitInterrupted) << r.err;
  std::string ckpt = sslab::latest_checkpoint(dir / "stopped");
  ASSERT_FALSE(ckpt.empty()) << r.err;
  ASSERT_EQ(ckpt.find("step-000003000"), std::string::npos) << "the run finished before the signal";
  EXPECT_NE(r.err.find("stopped by SIGTERM after step "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resume with: sslab train --resume " + dir / "stopped"), std::string::npos) << r.err;
  auto resumed = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "stopped" + " --no-eval");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto full = metric(dir / "full", "loss"), again = metric(dir / "stopped", "loss");
  ASSERT_EQ(again.size(), full.size());
  EXPECT_EQ(again.back(), full.back());
  sslab::PluginHost host;
  auto a = sslab_test::run_weights(host, dir / "full"), b = sslab_test::run_weights(host, dir / "stopped");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

// SIGUSR1 (SLURM's --signal) and SIGINT (Ctrl-C) stop the same way.
TEST(Trainer, SigusrAndSigintStopTheSameWay) {
  TempDir dir;
  std::string file = dir.write("recipe.toml", recipe_text("steps = 100000"));
  for (int sig : {SIGUSR1, SIGINT}) {
    std::string out = dir / ("run-" + std::to_string(sig));
    sslab_test::Background run(sslab_test::sslab_cli() + " train " + file + " --no-eval --out " + out);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (sslab_test::metric_lines(out) < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    run.signal(sig);
    auto r = run.wait();
    EXPECT_EQ(r.exit_code, sslab::kExitInterrupted) << r.err;
    EXPECT_NE(r.err.find(std::string("stopped by ") + sslab::StopSignals::name(sig)), std::string::npos) << r.err;
    EXPECT_FALSE(sslab::latest_checkpoint(out).empty());
  }
}

// A second signal does not wait for the step: the process ends by it at once.
TEST(Trainer, SecondSignalEndsTheProcessAtOnce) {
  pid_t pid = fork();
  if (pid == 0) {
    sslab::StopSignals signals;
    raise(SIGTERM);
    if (sslab::StopSignals::received() != SIGTERM) _exit(3);
    raise(SIGTERM);  // ends the process here
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit code " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

// checkpoint.keep_last: the newest N stay, each with its checksum, and
// nothing half written is left.
TEST(Trainer, KeepLastPrunesOldCheckpoints) {
  TempDir dir;
  ASSERT_EQ(train(dir, recipe_text("steps = 8", "[checkpoint]\nevery_steps = 2\nkeep_last = 2\n"), "run").exit_code, 0);
  std::vector<std::string> files;
  for (const auto& e : sslab_test::fs::directory_iterator(dir / "run/checkpoints"))
    files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"step-000000006.pt", "step-000000006.pt.crc32c", "step-000000008.pt",
                                             "step-000000008.pt.crc32c"}));
}

// A checkpoint that cannot be written (here: a file size limit, as a full
// disk or a quota) stops the run with one line naming the file and the
// reason; the previous checkpoint stays and resumes.
TEST(Trainer, FailedCheckpointWriteIsOneLineAndKeepsThePreviousOne) {
  TempDir dir;
  std::string recipe = recipe_text("steps = 8", "[checkpoint]\nevery_steps = 2\nkeep_last = 10\n");
  ASSERT_EQ(train(dir, recipe, "run", "--no-eval").exit_code, 0);
  for (const char* step : {"6", "8"})
    for (const char* ext : {".pt", ".pt.crc32c"})
      sslab_test::fs::remove(dir / (std::string("run/checkpoints/step-00000000") + step + ext));
  auto size = sslab_test::fs::file_size(dir / "run/checkpoints/step-000000004.pt");
  auto r = sslab_test::run("prlimit --fsize=" + std::to_string(size / 2) + " " + sslab_test::sslab_cli() +
                           " train --resume " + dir / "run" + " --no-eval");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot write the checkpoint " + dir / "run/checkpoints/step-000000006.pt" + ": File too large"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the previous checkpoint is kept"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(sslab::latest_checkpoint(dir / "run"), dir / "run/checkpoints/step-000000004.pt");
  EXPECT_FALSE(sslab_test::fs::exists(dir / "run/checkpoints/step-000000006.pt.tmp"));
  auto again = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "run" + " --no-eval");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("resumed at step 4"), std::string::npos) << again.out;
}

// A damaged or cut newest checkpoint: --resume and eval fall back to the
// previous one, warning with both names; none readable is a clear error.
TEST(Trainer, DamagedNewestCheckpointFallsBackToThePreviousOne) {
  TempDir dir;
  std::string recipe = recipe_text("steps = 4", "[checkpoint]\nevery_steps = 2\nkeep_last = 10\n");
  ASSERT_EQ(train(dir, recipe, "run", "--no-eval").exit_code, 0);
  std::string newest = dir / "run/checkpoints/step-000000004.pt", older = dir / "run/checkpoints/step-000000002.pt";
  std::string bytes = sslab_test::read_text(newest);
  for (int how = 0; how < 2; ++how) {
    std::string broken = bytes;
    if (how == 0) {
      for (size_t i = broken.size() / 2; i < broken.size() / 2 + 8; ++i) broken[i] = static_cast<char>(broken[i] ^ 0x11);
    } else {
      broken.resize(broken.size() * 2 / 3);
    }
    dir.write("run/checkpoints/step-000000004.pt", broken);
    auto r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --out " + dir / "e.json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: the newest checkpoint is unreadable (" + newest), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("using the previous one, " + older), std::string::npos) << r.err;
  }
  auto resumed = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "run" + " --no-eval");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed at step 2"), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.err.find("using the previous one, " + older), std::string::npos) << resumed.err;
  // Without its checksum file (a checkpoint from elsewhere), damage inside the
  // archive's pickled structure is still a user's error naming the file
  // (LibTorch throws torch::jit::ErrorReport for it; found by fuzzing).
  std::string foreign = sslab_test::read_text(older);
  size_t at = foreign.find("__torch__");
  ASSERT_NE(at, std::string::npos);
  foreign[at + 2] = 'X';
  dir.write("foreign/checkpoints/step-000000002.pt", foreign);
  dir.write("foreign/recipe.toml", sslab_test::read_text(dir / "run/recipe.toml"));
  auto bad = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "foreign" + " --out " + dir / "f.json");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("step-000000002.pt: not a readable sslab checkpoint ("), std::string::npos) << bad.err;
  // The resumed run wrote step 4 anew; damage every checkpoint now.
  for (const auto& f : sslab::checkpoints_newest_first(dir / "run")) dir.write(f.substr(dir.str().size() + 1), "junk");
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "run" + " --no-eval");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no older checkpoint of " + dir / "run" + " is readable"), std::string::npos) << r.err;
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
  EXPECT_NE(r.err.find("no/such/dir/e.json: cannot write ("), std::string::npos) << r.err;
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
