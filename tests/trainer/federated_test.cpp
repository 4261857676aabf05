// Federated training ([federated]): partitions, client sampling, FedAvg
// against centralised training, resume at a round boundary, and the
// recipe's errors. Two ranks against one process: tests/distributed.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/federated.h"
#include "run_weights.h"
#include "test_util.h"

namespace {

using sslab_test::metric;
using sslab_test::TempDir;

// Every index of 0..n-1 in exactly one part, each part sorted.
void expect_covers_once(const std::vector<std::vector<int64_t>>& parts, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (const auto& p : parts) {
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (int64_t i : p) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "sample " << i;
}

std::vector<int64_t> fed_labels(int64_t n, int64_t classes) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = (i * 7) % classes;
  return out;
}

TEST(Federated, IidShardsAreEqualAndCoverEverySampleOnce) {
  auto parts = sslab::partition_iid(1003, 10, 5);
  expect_covers_once(parts, 1003);
  for (const auto& p : parts) EXPECT_TRUE(p.size() == 100 || p.size() == 101) << p.size();
  EXPECT_EQ(parts, sslab::partition_iid(1003, 10, 5));
  EXPECT_NE(parts, sslab::partition_iid(1003, 10, 6));
}

TEST(Federated, DirichletPartitionsAreReproducibleAndSkewed) {
  const auto y = fed_labels(6000, 10);
  auto a = sslab::partition_dirichlet(y, 10, 0.1, 32, 3, "here");
  expect_covers_once(a, 6000);
  EXPECT_EQ(a, sslab::partition_dirichlet(y, 10, 0.1, 32, 3, "here"));
  EXPECT_NE(a, sslab::partition_dirichlet(y, 10, 0.1, 32, 4, "here"));
  for (const auto& p : a) EXPECT_GE(p.size(), 32u);
  // alpha = 0.1: a client's largest class holds most of its samples; alpha =
  // 1000: close to iid (about a tenth each).
  auto top_share = [&](const std::vector<std::vector<int64_t>>& parts) {
    double sum = 0;
    for (const auto& p : parts) {
      std::map<int64_t, int64_t> counts;
      for (int64_t i : p) ++counts[y[i]];
      int64_t top = 0;
      for (const auto& [c, n] : counts) top = std::max(top, n);
      sum += static_cast<double>(top) / static_cast<double>(p.size());
    }
    return sum / static_cast<double>(parts.size());
  };
  EXPECT_GT(top_share(a), 0.5);
  auto flat = sslab::partition_dirichlet(y, 10, 1000.0, 32, 3, "here");
  expect_covers_once(flat, 6000);
  EXPECT_LT(top_share(flat), 0.2);
}

TEST(Federated, DirichletThatCannotFillEveryClientIsAClearError) {
  const auto y = fed_labels(100, 2);
  std::string e = sslab_test::user_error([&] { sslab::partition_dirichlet(y, 50, 0.01, 10, 0, "recipe.toml:3:1: federated.alpha"); });
  EXPECT_NE(e.find("recipe.toml:3:1: federated.alpha"), std::string::npos) << e;
  EXPECT_NE(e.find("fewer than 10"), std::string::npos) << e;
}

TEST(Federated, ByKeyKeepsEachValueOnOneClient) {
  std::vector<int64_t> speaker(500);
  for (size_t i = 0; i < speaker.size(); ++i) speaker[i] = static_cast<int64_t>(i % 23);
  auto parts = sslab::partition_by_key(speaker, 5, 1, "here");
  expect_covers_once(parts, 500);
  std::map<int64_t, int> owner;
  for (size_t k = 0; k < parts.size(); ++k)
    for (int64_t i : parts[k]) {
      auto [it, fresh] = owner.emplace(speaker[i], static_cast<int>(k));
      EXPECT_EQ(it->second, static_cast<int>(k)) << "speaker " << speaker[i] << " on two clients";
    }
  EXPECT_EQ(parts, sslab::partition_by_key(speaker, 5, 1, "here"));
  std::string e = sslab_test::user_error([&] { sslab::partition_by_key(speaker, 30, 1, "here"); });
  EXPECT_NE(e.find("23 distinct values for 30 clients"), std::string::npos) << e;
}

TEST(Federated, RoundClientsAreSeededSortedAndDistinct) {
  auto a = sslab::round_clients(10, 4, 7, 3);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 4u);
  EXPECT_EQ(a, sslab::round_clients(10, 4, 7, 3));
  bool differs = false;
  for (int64_t r = 4; r < 10; ++r) differs = differs || sslab::round_clients(10, 4, 7, r) != a;
  EXPECT_TRUE(differs);
  EXPECT_EQ(sslab::round_clients(3, 0, 7, 1), (std::vector<int64_t>{0, 1, 2}));
}

// ---- runs of the sslab command on the template plugin

std::string fed_recipe(const std::string& train, const std::string& federated, int64_t size = 1024) {
  return R"(name = "fed"
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = )" + std::to_string(size) + R"(
[data.test]
type = "template.blobs"
size = 128
[encoders.main]
type = "template.mlp"
[[objectives]]
type = "template.reconstruct"
[train]
lr = 0.01
threads = 1
workers = 2
)" + train + "\n[log]\nprogress = \"none\"\nevery_steps = 1\n[federated]\n" + federated + "\n";
}

sslab_test::RunResult fed_train(const TempDir& dir, const std::string& text, const std::string& out,
                            const std::string& args = "") {
  std::string file = dir.write(out + ".toml", text);
  return sslab_test::run(sslab_test::sslab_cli() + " train " + file + " --no-eval --out " + dir / out + " " + args);
}

sslab::PluginHost& fed_host() {
  static sslab::PluginHost host;  // plugins load once per process
  return host;
}

std::map<std::string, torch::Tensor> fed_weights(const std::string& run_dir) {
  return sslab_test::run_weights(fed_host(), run_dir);
}

void fed_expect_close(const std::string& a, const std::string& b, double tol) {
  auto wa = fed_weights(a), wb = fed_weights(b);
  ASSERT_FALSE(wa.empty());
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_LE((t - wb[name]).abs().max().item<double>(), tol) << name;
  }
}

// One client holding everything, one local step a round, its optimizer state
// kept: FedAvg is centralised training, step for step.
TEST(Federated, OneClientOneLocalStepEqualsCentralisedTraining) {
  TempDir dir;
  const std::string fed = "clients = 1\nrounds = 25\nlocal_steps = 1\noptimizer_state = \"keep\"";
  auto f = fed_train(dir, fed_recipe("batch_size = 32\nsteps = 25", fed), "fed");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto c = fed_train(dir, fed_recipe("batch_size = 32\nsteps = 25", fed + "\nenabled = false"), "central");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  fed_expect_close(dir / "fed", dir / "central", 1e-6);
  auto lf = metric(dir / "fed", "loss"), lc = metric(dir / "central", "loss");
  ASSERT_EQ(lf.size(), 25u);
  ASSERT_EQ(lc.size(), 25u);
  for (size_t i = 0; i < lf.size(); ++i) EXPECT_NEAR(lf[i], lc[i], 1e-6) << "round " << i + 1;
  EXPECT_EQ(metric(dir / "fed", "round").back(), 25);
}

// K clients on equal iid shards, all taking part, one SGD step each: the
// average of their steps is one step on the union of their batches.
TEST(Federated, OneRoundOfOneSgdStepEqualsOneStepOnTheUnionBatch) {
  TempDir dir;
  const std::string sgd = "optimizer = \"sgd\"\nschedule = \"constant\"\nsteps = 1\n";
  auto f = fed_train(dir, fed_recipe(sgd + "batch_size = 16", "clients = 4\nrounds = 1\nlocal_steps = 1", 64), "fed");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  auto c = fed_train(dir, fed_recipe(sgd + "batch_size = 64", "clients = 4\nenabled = false", 64), "central");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  fed_expect_close(dir / "fed", dir / "central", 1e-6);
  // ... and the trained weights moved (the comparison is not of two starts).
  auto w = fed_weights(dir / "fed");
  sslab::Experiment fresh(sslab::load_run_recipe(dir / "fed"), fed_host());
  double moved = 0;
  for (const auto& [name, m] : fresh.modules())
    for (const auto& p : m->named_parameters(true))
      moved = std::max(moved, (p.value() - w.at(name + "." + p.key())).abs().max().item<double>());
  EXPECT_GT(moved, 1e-4);
}

TEST(Federated, RunLogsRoundsParticipationDriftAndPartition) {
  TempDir dir;
  auto r = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1",
                             "clients = 5\nclients_per_round = 2\nrounds = 4\nlocal_steps = 3\npartition = "
                             "\"dirichlet\"\nalpha = 0.3\nlocal = [\"*.fc1.bias\"]"),
                 "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(metric(dir / "run", "round"), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(metric(dir / "run", "clients"), (std::vector<double>{2, 2, 2, 2}));
  for (double d : metric(dir / "run", "drift_mean")) EXPECT_GT(d, 0);
  std::ifstream rounds(dir / "run/rounds.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(rounds, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("round").get<int>(), ++n);
    EXPECT_EQ(j.at("clients").size(), 2u);
    EXPECT_EQ(j.at("drift").size(), 2u);
  }
  EXPECT_EQ(n, 4);
  auto part = sslab_test::read_json(dir / "run/partition.json");
  EXPECT_EQ(part.at("clients").size(), 5u);
  int64_t total = 0;
  for (const auto& c : part.at("clients")) total += c.at("samples").get<int64_t>();
  EXPECT_EQ(total, 1024);
  EXPECT_TRUE(part.at("clients")[0].contains("by_label"));
}

// SIGKILLed after its first checkpoint and resumed, a federated run ends with
// the weights of an uninterrupted one (client sampling, loader positions,
// clients' own tensors and optimizer states included).
TEST(Federated, KilledRunResumesAtTheRoundBoundaryWithTheSameWeights) {
  TempDir dir;
  const std::string text =
      fed_recipe("batch_size = 16\nsteps = 1",
             "clients = 4\nclients_per_round = 2\nrounds = 300\nlocal_steps = 4\ncheckpoint_every = 1\npartition = "
             "\"dirichlet\"\nlocal = [\"*.fc1.*\"]\noptimizer_state = \"keep\"");
  auto full = fed_train(dir, text, "full");
  ASSERT_EQ(full.exit_code, 0) << full.err;
  std::string file = dir.write("killed.toml", text);
  std::string ckpt = sslab_test::train_and_kill_after_first_checkpoint(
      file + " --no-eval --out " + dir / "killed", dir / "killed");
  ASSERT_FALSE(ckpt.empty());
  ASSERT_EQ(ckpt.find("step-000001200"), std::string::npos) << "the run finished before it was killed";
  auto resumed = sslab_test::run(sslab_test::sslab_cli() + " train --resume " + dir / "killed" + " --no-eval");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("(resumed after round "), std::string::npos) << resumed.out;
  fed_expect_close(dir / "full", dir / "killed", 0);
  auto a = metric(dir / "full", "loss"), b = metric(dir / "killed", "loss");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);
}

TEST(Federated, SingleClientBaselineTrainsOnItsShardAlone) {
  TempDir dir;
  auto r = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 5", "clients = 4\nonly_client = 2\npartition = \"dirichlet\""),
                 "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("federated.only_client = 2: training on its "), std::string::npos) << r.out;
  EXPECT_EQ(metric(dir / "run", "loss").size(), 5u);
  auto bad = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 5", "clients = 4\nonly_client = 4"), "bad");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("federated.only_client (4) must be below federated.clients (4)"), std::string::npos) << bad.err;
}

TEST(Federated, RecipeErrorsNameTheKey) {
  TempDir dir;
  auto too_many = fed_train(dir, fed_recipe("batch_size = 64\nsteps = 1", "clients = 32"), "a");
  EXPECT_EQ(too_many.exit_code, 2);
  EXPECT_NE(too_many.err.find("a.toml"), std::string::npos) << too_many.err;
  EXPECT_NE(too_many.err.find("federated.clients: 1024 training samples over 32 clients leave 32 per client"),
            std::string::npos)
      << too_many.err;
  auto pattern = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1", "clients = 2\nlocal = [\"*.bn*\"]"), "b");
  EXPECT_EQ(pattern.exit_code, 2);
  EXPECT_NE(pattern.err.find("federated.local: '*.bn*' matches no parameter or buffer"), std::string::npos)
      << pattern.err;
  auto typo = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1", "clients = 2\nrouns = 3"), "c");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("rouns"), std::string::npos) << typo.err;
  auto key = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1", "clients = 2\npartition = \"by_key\"\nkey = \"speaker\""), "d");
  EXPECT_EQ(key.exit_code, 2);
  EXPECT_NE(key.err.find("federated.key: sample 0 has no key 'speaker'"), std::string::npos) << key.err;
  auto norms = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1", "clients = 2\nlocal_norms = true"), "e");
  EXPECT_EQ(norms.exit_code, 2);
  EXPECT_NE(norms.err.find("federated.local_norms: the model has no normalisation layer"), std::string::npos)
      << norms.err;
  auto bucket = fed_train(dir, fed_recipe("batch_size = 16\nsteps = 1\nbucket_key = \"x\"", "clients = 2"), "f");
  EXPECT_EQ(bucket.exit_code, 2);
  EXPECT_NE(bucket.err.find("train.bucket_key: length bucketing is not available with [federated]"), std::string::npos)
      << bucket.err;
}

}  // namespace
