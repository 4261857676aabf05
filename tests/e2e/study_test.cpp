// Studies end to end: sslab sweep (a grid and seeds, side by side, stopped
// and rerun) and sslab compare.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "sslab/host/checkpoint.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using sslab_test::run;
using sslab_test::TempDir;

std::string sweep_command(const std::string& out) {
  return sslab_test::sslab_cli() + " sweep " + std::string(SSLAB_SOURCE_DIR) +
         "/recipes/smoke/ssl_simclr.toml --grid train.lr=0.003,0.01 --grid heads.proj.out_dim=16,32 --seeds 2 "
         "--jobs 2 --set train.steps=300 --set checkpoint.every_steps=50 --set log.every_steps=50 --out " + out;
}

// sweep.log lines: (event, run) in order.
std::vector<std::pair<std::string, std::string>> events(const std::string& study) {
  std::ifstream in(study + "/sweep.log");
  std::vector<std::pair<std::string, std::string>> out;
  std::string date, time, what, dir;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    s >> date >> time >> what >> dir;
    out.emplace_back(what, dir);
  }
  return out;
}

// A 2 x 2 grid with 2 seeds, 2 runs at a time, stopped (SIGTERM) while a
// run that already has a checkpoint is training, then the same command
// again: 8 finished runs, none trained twice, the stopped ones continued
// from their checkpoints; sslab compare gives 4 rows with mean ± std.
TEST(Sweep, StoppedAndRerunFinishesEveryRunOnce) {
  TempDir dir;
  const std::string study = dir / "study";
  auto printed = run(sweep_command(study) + " --print");
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  std::istringstream lines(printed.out);
  std::string line;
  int commands = 0;
  while (std::getline(lines, line)) {
    ++commands;
    EXPECT_NE(line.find(" train "), std::string::npos) << line;
    EXPECT_NE(line.find("--or-resume"), std::string::npos) << line;
    EXPECT_NE(line.find("--set train.seed="), std::string::npos) << line;
  }
  EXPECT_EQ(commands, 8);
  ASSERT_TRUE(fs::exists(study + "/study.json"));

  {
    sslab_test::Background sweep(sweep_command(study));
    // Wait for a run that is not finished but has written a checkpoint.
    bool seen = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      for (const auto& e : events(study)) {
        if (e.first != "start") continue;
        const fs::path run_dir = fs::path(study) / e.second;
        if (!fs::exists(run_dir / "DONE") && !sslab::latest_checkpoint(run_dir.string()).empty()) seen = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(seen) << "no run wrote a checkpoint";
    sweep.signal(SIGTERM);
    auto r = sweep.wait();
    EXPECT_EQ(r.exit_code, 75) << r.out << r.err;
    EXPECT_NE(r.out.find("stopping:"), std::string::npos) << r.out;
  }
  const size_t first = events(study).size();
  int done_before = 0;
  for (const auto& e : events(study)) done_before += e.first == "done";
  EXPECT_LT(done_before, 8);

  auto r = run(sweep_command(study));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::map<std::string, int> done, started;
  std::set<std::string> finished;
  int resumed = 0, skipped = 0;
  auto all = events(study);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& [what, run_dir] = all[i];
    if (what == "start" || what == "resume") {
      EXPECT_EQ(finished.count(run_dir), 0u) << run_dir << " trained again after it was done";
      ++started[run_dir];
      if (what == "resume" && i >= first) ++resumed;
    }
    if (what == "done") {
      ++done[run_dir];
      finished.insert(run_dir);
    }
    if (what == "skip" && i >= first) ++skipped;
  }
  EXPECT_EQ(done.size(), 8u);
  for (const auto& [d, n] : done) EXPECT_EQ(n, 1) << d;
  EXPECT_EQ(skipped, done_before);
  EXPECT_GE(resumed, 1) << "the run stopped after its checkpoint was not continued from it";
  // A continued run's metrics have every logged step once, in order.
  for (const auto& [d, n] : done) {
    std::vector<double> steps = sslab_test::metric(study + "/" + d, "step");
    for (size_t i = 1; i < steps.size(); ++i) EXPECT_LT(steps[i - 1], steps[i]) << d;
  }

  auto c = run(sslab_test::sslab_cli() + " compare " + study);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::cout << c.out;
  std::istringstream table(c.out);
  std::vector<std::string> rows;
  while (std::getline(table, line)) rows.push_back(line);
  ASSERT_GE(rows.size(), 6u) << c.out;
  EXPECT_NE(rows[0].find("heads.proj.out_dim"), std::string::npos) << rows[0];
  EXPECT_NE(rows[0].find("train.lr"), std::string::npos) << rows[0];
  EXPECT_EQ(rows[0].find("train.seed"), std::string::npos) << "seeds are averaged, not columns";
  int marked = 0;
  for (int i = 1; i <= 4; ++i) {
    EXPECT_NE(rows[static_cast<size_t>(i)].find("±"), std::string::npos) << rows[static_cast<size_t>(i)];
    marked += rows[static_cast<size_t>(i)][0] == '*';
  }
  EXPECT_EQ(marked, 1);
  EXPECT_EQ(rows[5].rfind("* best linear_probe.accuracy", 0), 0u) << rows[5];
  // JSON: every row averages its 2 seeds.
  auto j = run(sslab_test::sslab_cli() + " compare " + study + " --format json");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json parsed = nlohmann::json::parse(j.out);
  ASSERT_EQ(parsed.at("rows").size(), 4u);
  for (const auto& row : parsed.at("rows")) {
    EXPECT_EQ(row.at("runs").size(), 2u);
    EXPECT_EQ(row.at("metrics").at("linear_probe.accuracy").at("values").size(), 2u);
  }
  // --or-resume never continues a folder with another recipe.
  auto mismatch = run(sslab_test::sslab_cli() + " train " + std::string(SSLAB_SOURCE_DIR) +
                      "/recipes/smoke/ssl_simclr.toml --set train.lr=0.5 --or-resume --out " + study + "/" + done.begin()->first);
  EXPECT_EQ(mismatch.exit_code, 2);
  EXPECT_NE(mismatch.err.find("holds a run of another recipe"), std::string::npos) << mismatch.err;
  // Another grid into the same folder is refused; so is a grid typo, before anything runs.
  auto other = run(sslab_test::sslab_cli() + " sweep " + std::string(SSLAB_SOURCE_DIR) +
                   "/recipes/smoke/ssl_simclr.toml --grid train.lr=0.1 --out " + study);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("holds another study"), std::string::npos) << other.err;
  auto typo = run(sslab_test::sslab_cli() + " sweep " + std::string(SSLAB_SOURCE_DIR) +
                  "/recipes/smoke/ssl_simclr.toml --grid train.lrr=0.1,0.2 --out " + dir / "typo");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("lrr"), std::string::npos) << typo.err;
  EXPECT_FALSE(fs::exists(dir / "typo/study.json"));
}

TEST(Sweep, GridValuesKeepBracketsAndQuotes) {
  TempDir dir;
  auto r = run(sslab_test::sslab_cli() + " sweep " + std::string(SSLAB_SOURCE_DIR) +
               "/recipes/smoke/ssl_simclr.toml --grid 'heads.proj.hidden=[64],[64, 64]' --print --out " + dir / "s");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json study = sslab_test::read_json(dir / "s/study.json");
  ASSERT_EQ(study.at("points").size(), 2u);
  EXPECT_EQ(study.at("points")[1].at("values").at("heads.proj.hidden"), "[64, 64]");
}

// The live monitors: a recipe built to collapse (two views pulled together
// with no negatives, predictor or stop-gradient: SimSiam without its
// safeguards) gets the collapse warning within a few hundred steps, naming
// the encoder and the step; the shipped SimCLR smoke recipe gets none, and
// its monitors are in metrics.jsonl.
TEST(Monitors, CollapseIsWarnedOnceAndHealthyRunsAreQuiet) {
  TempDir dir;
  std::string recipe = sslab_test::read_text(std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/ssl_simclr.toml");
  const std::string objective = "type = \"ssl.infonce\"\nencoder = \"main\"\nprojector = \"proj\"\ntemperature = 0.2";
  ASSERT_NE(recipe.find(objective), std::string::npos);
  // The encoder's own embeddings pulled together (no projector, so the encoder itself must collapse).
  recipe.replace(recipe.find(objective), objective.size(), "type = \"template.cosine_views\"\nencoder = \"main\"");
  const std::string collapsing = dir.write("collapse.toml", recipe);
  auto r = run(sslab_test::sslab_cli() + " train " + collapsing + " --no-eval --set train.steps=300 --set log.every_steps=10 --out " +
               dir / "collapse");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t at = r.err.find("warning: encoder 'main' looks collapsed at step ");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("looks collapsed", at + 50), std::string::npos) << "warned twice: " << r.err;
  const long step = std::stol(r.err.substr(at + std::string("warning: encoder 'main' looks collapsed at step ").size()));
  EXPECT_LE(step, 300);
  std::cout << r.err.substr(at, r.err.find('\n', at) - at) << "\n";
  std::vector<double> ratio = sslab_test::metric(dir / "collapse", "monitor/main/std_ratio");
  ASSERT_FALSE(ratio.empty());
  EXPECT_LT(ratio.back(), 0.02);

  auto healthy = run(sslab_test::sslab_cli() + " train " + std::string(SSLAB_SOURCE_DIR) +
                     "/recipes/smoke/ssl_simclr.toml --no-eval --out " + dir / "simclr");
  ASSERT_EQ(healthy.exit_code, 0) << healthy.err;
  EXPECT_EQ(healthy.err.find("looks collapsed"), std::string::npos) << healthy.err;
  for (const char* key : {"monitor/main/std", "monitor/main/std_ratio", "monitor/main/erank", "monitor/main/align",
                          "monitor/main/uniform"}) {
    std::vector<double> v = sslab_test::metric(dir / "simclr", key);
    EXPECT_EQ(v.size(), sslab_test::metric(dir / "simclr", "loss").size()) << key;
  }
  std::vector<double> erank = sslab_test::metric(dir / "simclr", "monitor/main/erank");
  EXPECT_GT(erank.back(), 1.5);
}

// Bad arguments to the study and interop commands: exit 2 with one line
// naming what is wrong, before any work.
TEST(Cli, StudyAndInteropCommandsRefuseBadArguments) {
  TempDir dir;
  const std::string recipe = std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/ssl_simclr.toml";
  const std::string cli = sslab_test::sslab_cli();
  auto r = run(cli + " train " + recipe + " --no-eval --set train.steps=5 --out " + dir / "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string run_dir = dir / "run";
  auto refused = [&](const std::string& args, const std::string& needle) {
    auto res = run(cli + " " + args);
    EXPECT_EQ(res.exit_code, 2) << args << ": " << res.err;
    EXPECT_NE(res.err.find(needle), std::string::npos) << args << ": " << res.err;
  };
  refused("export " + run_dir + " --step 99", "no checkpoint of step 99 (it has: step-000000005.pt)");
  refused("export " + run_dir + " --format onnx", "unknown --format 'onnx'");
  refused("embed " + run_dir + " --out " + dir / "x.csv", "--out must end in .npy or .safetensors");
  refused("embed " + run_dir + " --out " + dir / "x.npy --with-inputs", "--with-inputs needs a .safetensors output");
  refused("embed " + run_dir + " --split val --out " + dir / "x.npy", "the recipe has no [data.val] (it has: test, train)");
  refused("compare " + run_dir + " --metric nope", "--metric nope: no run has it (they have: train.final_loss)");
  refused("compare " + dir / "nothing", "not a run or study folder");
  refused("compare " + run_dir + " --format xml", "unknown --format 'xml'");
  refused("report", "at least one run or study folder is required");
  refused("sweep " + recipe + " --grid train.lr", "--grid 'train.lr': expected key=a,b");
  refused("sweep " + recipe + " --grid train.lr=0.1 --grid train.lr=0.2", "--grid train.lr is given twice");
  refused("sweep " + recipe + " --grid train.seed=1,2", "use --seeds N for seeds");
  refused("sweep " + recipe + " --grid train.lr=0.1 --seeds 0", "--seeds must be 1..1000");
  refused("train " + recipe + " --or-resume", "--or-resume needs --out");
  EXPECT_FALSE(fs::exists(dir / "x.npy"));
}

}  // namespace
