// Multi-process runs of the sslab command on loopback: two ranks equal one
// rank with the whole batch, resume across world sizes, a killed rank stops
// the other, a bad environment is a clear error, and torchrun launches it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/signals.h"
#include "sslab/host/trainer.h"
#include "run_weights.h"
#include "test_util.h"

namespace {

using sslab_test::free_port;

using sslab_test::read_text;
using sslab_test::run;
using sslab_test::sslab_cli;
using sslab_test::TempDir;

const std::string kRecipe = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/template.toml";

// `sslab train ARGS` as rank r of 2 (variables set as torchrun would), in the background.
std::string rank_cmd(int rank, int port, const std::string& args, const std::string& log) {
  return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
         " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " timeout 300 " + sslab_cli() +
         " train " + args + " > " + log + " 2>&1";
}

// Runs two ranks to completion; returns both exit codes.
std::pair<int, int> train_two_ranks(const TempDir& tmp, const std::string& args) {
  int port = free_port();
  std::string script = "(" + rank_cmd(0, port, args, tmp / "log0") + "; echo $? > " + tmp / "rc0" + ") & (" +
                       rank_cmd(1, port, args, tmp / "log1") + "; echo $? > " + tmp / "rc1" + ") & wait";
  run(script);
  return {std::stoi(read_text(tmp / "rc0")), std::stoi(read_text(tmp / "rc1"))};
}

// The trained parameters of a run folder, by name.
std::map<std::string, torch::Tensor> weights(const std::string& run_dir) {
  static sslab::PluginHost host;  // plugins load once per process
  return sslab_test::run_weights(host, run_dir);
}

void expect_same_weights(const std::string& a, const std::string& b) {
  auto wa = weights(a), wb = weights(b);
  ASSERT_EQ(wa.size(), wb.size());
  ASSERT_FALSE(wa.empty());
  for (const auto& [name, t] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_TRUE(torch::allclose(t, wb[name], 1e-4, 1e-5))
        << name << ": max difference " << (t - wb[name]).abs().max().item<double>();
  }
}

const std::string kArgs = " --no-eval --set train.steps=12 --set log.every_steps=4 --set log.progress=none";

TEST(Ranks, TwoRanksEqualOneRankWithTheWholeBatch) {
  TempDir tmp;
  auto one = run(sslab_cli() + " train " + kRecipe + kArgs + " --out " + tmp / "one");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto [rc0, rc1] = train_two_ranks(tmp, kRecipe + kArgs + " --out " + tmp / "two");
  ASSERT_EQ(rc0, 0) << read_text(tmp / "log0");
  ASSERT_EQ(rc1, 0) << read_text(tmp / "log1");
  expect_same_weights(tmp / "one", tmp / "two");
  // Rank 0 alone wrote the run folder; its metrics are averaged over ranks.
  auto loss1 = sslab_test::metric(tmp / "one", "loss"), loss2 = sslab_test::metric(tmp / "two", "loss");
  ASSERT_EQ(loss1.size(), 3u);
  ASSERT_EQ(loss2.size(), 3u);
  for (size_t i = 0; i < loss1.size(); ++i) EXPECT_NEAR(loss1[i], loss2[i], 1e-4 * std::abs(loss1[i]) + 1e-6);
}

TEST(Ranks, ResumeWithAnotherWorldSize) {
  TempDir tmp;
  const std::string constant = " --no-eval --set train.schedule=constant --set log.progress=none --set log.every_steps=4";
  auto one = run(sslab_cli() + " train " + kRecipe + constant + " --set train.steps=16 --out " + tmp / "one");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  // Two ranks for 8 steps, then one rank continues the same run to 16.
  auto [rc0, rc1] = train_two_ranks(tmp, kRecipe + constant + " --set train.steps=8 --out " + tmp / "two");
  ASSERT_EQ(rc0, 0) << read_text(tmp / "log0");
  ASSERT_EQ(rc1, 0) << read_text(tmp / "log1");
  std::string recipe = read_text(tmp / "two/recipe.toml");
  std::string longer = std::regex_replace(recipe, std::regex("\nsteps = 8\n"), "\nsteps = 16\n");
  ASSERT_NE(longer, recipe);
  std::ofstream(tmp / "two/recipe.toml") << longer;
  auto resumed = run(sslab_cli() + " train --resume " + tmp / "two" + " --no-eval");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed at step 8"), std::string::npos) << resumed.out;
  expect_same_weights(tmp / "one", tmp / "two");
}

// A signal to one rank stops both after the same step: one checkpoint,
// exit 75 everywhere, and the run resumes.
TEST(Ranks, SignalToOneRankStopsBothAfterTheSameStep) {
  TempDir tmp;
  int port = free_port();
  auto rank = [&](int r) {
    return "env RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + sslab_cli() + " train " +
           kRecipe + " --no-eval --set train.steps=100000 --set log.every_steps=1 --set log.progress=none --out " +
           tmp / "run";
  };
  sslab_test::Background r0(rank(0)), r1(rank(1));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (sslab_test::metric_lines(tmp / "run") < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r1.signal(SIGTERM);
  auto a = r0.wait(), b = r1.wait();
  EXPECT_EQ(a.exit_code, sslab::kExitInterrupted) << a.err;
  EXPECT_EQ(b.exit_code, sslab::kExitInterrupted) << b.err;
  EXPECT_NE(a.err.find("resume with: sslab train --resume " + tmp / "run"), std::string::npos) << a.err;
  std::string ckpt = sslab::latest_checkpoint(tmp / "run");
  ASSERT_FALSE(ckpt.empty());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(a.err, m, std::regex("after step ([0-9]+) of"))) << a.err;
  char name[32];
  std::snprintf(name, sizeof(name), "step-%09d.pt", std::stoi(m[1]));
  EXPECT_NE(ckpt.find(name), std::string::npos) << ckpt;
}

TEST(Ranks, AKilledRankStopsTheOtherWithAClearError) {
  TempDir tmp;
  int port = free_port();
  std::string args = kRecipe + " --no-eval --set train.steps=1000000 --set log.every_steps=1 --set log.progress=none" +
                     " --set distributed.timeout_s=30 --out " + tmp / "run";
  std::string script = "(" + rank_cmd(0, port, args, tmp / "log0") + "; echo $? > " + tmp / "rc0" + ") & (" +
                       "RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " exec " +
                       sslab_cli() + " train " + args + " > " + tmp / "log1" + " 2>&1) & pid1=$!; " +
                       "for i in $(seq 600); do [ -s " + tmp / "run/metrics.jsonl" + " ] && break; sleep 0.1; done; " +
                       "kill -9 $pid1; start=$(date +%s.%N); wait; echo $(date +%s.%N) $start";
  auto r = run(script);
  ASSERT_FALSE(sslab_test::metric(tmp / "run", "loss").empty()) << "rank 0 never trained: " << read_text(tmp / "log0");
  int rc0 = std::stoi(read_text(tmp / "rc0"));
  std::string log0 = read_text(tmp / "log0");
  EXPECT_EQ(rc0, 2) << log0;  // not 124: it did not hang until the test's own timeout
  EXPECT_NE(log0.find("distributed:"), std::string::npos) << log0;
  EXPECT_NE(log0.find("failed on rank 0"), std::string::npos) << log0;
  double end = 0, start = 0;
  std::istringstream(r.out) >> end >> start;
  EXPECT_LT(end - start, 30.0) << "rank 0 took " << end - start << " s to stop";
}

TEST(Ranks, PartialEnvironmentIsAClearError) {
  auto r = run("RANK=0 WORLD_SIZE=2 " + sslab_cli() + " train " + kRecipe + " --no-eval --out /nonexistent/x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("MASTER_ADDR, MASTER_PORT are not"), std::string::npos) << r.err;
  TempDir tmp;
  r = run("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " " + sslab_cli() +
          " train " + kRecipe + " --no-eval --set distributed.timeout_s=2 --out " + tmp / "run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot reach the rendezvous store"), std::string::npos) << r.err;
}

TEST(Ranks, GlobalBatchMustSplitEvenly) {
  TempDir tmp;
  auto [rc0, rc1] = train_two_ranks(tmp, kRecipe + kArgs + " --set train.batch_size=33 --out " + tmp / "run");
  EXPECT_EQ(rc0, 2);
  EXPECT_NE(read_text(tmp / "log0").find("must be divisible by accumulate x world size (1 x 2)"), std::string::npos)
      << read_text(tmp / "log0");
}

TEST(Ranks, TorchrunLaunchesTheSslabCommand) {
  if (run("command -v torchrun").exit_code != 0) GTEST_SKIP() << "torchrun (python3-torch) is not installed";
  TempDir tmp;
  auto r = run("cd " + tmp.str() + " && timeout 300 torchrun --nproc_per_node=2 --no_python --redirects 1 --tee 1 --master_addr=127.0.0.1 " +
               "--master_port=" + std::to_string(free_port()) + " " + sslab_cli() + " train " + kRecipe + kArgs +
               " --out " + tmp / "run");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(sslab_test::metric(tmp / "run", "loss").size(), 3u);
  EXPECT_FALSE(sslab::latest_checkpoint(tmp / "run").empty());
}

}  // namespace

// Federated training spread over two ranks (each trains half of every
// round's clients, the sums are all-reduced) ends with the weights one
// process simulating every client reaches, clients' own tensors included.
TEST(Ranks, FederatedTwoRanksEqualOneProcess) {
  TempDir tmp;
  const std::string recipe = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/federated.toml";
  const std::string args = " --no-eval --set log.progress=none --set 'federated.local=[\"*.fc1.bias\"]'";
  auto one = run(sslab_cli() + " train " + recipe + args + " --out " + tmp / "one");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto [rc0, rc1] = train_two_ranks(tmp, recipe + args + " --out " + tmp / "two");
  ASSERT_EQ(rc0, 0) << read_text(tmp / "log0");
  ASSERT_EQ(rc1, 0) << read_text(tmp / "log1");
  expect_same_weights(tmp / "one", tmp / "two");
  auto loss1 = sslab_test::metric(tmp / "one", "loss"), loss2 = sslab_test::metric(tmp / "two", "loss");
  ASSERT_EQ(loss1.size(), 6u);
  ASSERT_EQ(loss2.size(), 6u);
  for (size_t i = 0; i < loss1.size(); ++i) EXPECT_NEAR(loss1[i], loss2[i], 1e-5 * std::abs(loss1[i]) + 1e-7);
  auto drift1 = sslab_test::metric(tmp / "one", "drift_mean"), drift2 = sslab_test::metric(tmp / "two", "drift_mean");
  ASSERT_EQ(drift1.size(), drift2.size());
  for (size_t i = 0; i < drift1.size(); ++i) EXPECT_NEAR(drift1[i], drift2[i], 1e-4 * drift1[i] + 1e-7);
}
