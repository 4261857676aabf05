// The downstream protocols: stratified label subsets, few-shot episodes,
// fine-tuning to a hand-checked accuracy, the two arms of sslab.finetune
// sharing everything but the initial weights, layer-wise lr decay, and
// `sslab eval --protocol`.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sslab/evaluation.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/experiment.h"
#include "sslab/host/protocols.h"
#include "test_util.h"

namespace {

std::map<int64_t, int64_t> class_counts(const torch::Tensor& y, const std::vector<int64_t>& idx) {
  std::map<int64_t, int64_t> out;
  for (int64_t i : idx) ++out[y[i].item<int64_t>()];
  return out;
}

TEST(Protocols, StratifiedSubsetKeepsEachClassShareAndDependsOnlyOnTheSeed) {
  // Unbalanced classes: 400, 200 and 100 samples, interleaved.
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < 700; ++i) labels.push_back(i < 400 ? 0 : i < 600 ? 1 : 2);
  std::vector<int64_t> shuffled(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) shuffled[(i * 3) % labels.size()] = labels[i];  // 3 is prime to 700
  torch::Tensor y = torch::tensor(shuffled);
  sslab::LabelSubset s = sslab::stratified_subset(y, 0.1, 0.25, 42);
  // round(0.1 n) per class: 40, 20, 10; a quarter of each to validation.
  auto tr = class_counts(y, s.train), va = class_counts(y, s.val);
  EXPECT_EQ(tr[0] + va[0], 40);
  EXPECT_EQ(tr[1] + va[1], 20);
  EXPECT_EQ(tr[2] + va[2], 10);
  EXPECT_EQ(va[0], 10);
  EXPECT_EQ(va[1], 5);
  EXPECT_EQ(va[2], 2);
  std::set<int64_t> all(s.train.begin(), s.train.end());
  for (int64_t i : s.val) EXPECT_TRUE(all.insert(i).second) << "index " << i << " is in both train and val";
  // Same seed, same subset; another seed, another subset.
  sslab::LabelSubset again = sslab::stratified_subset(y, 0.1, 0.25, 42);
  EXPECT_EQ(again.train, s.train);
  EXPECT_EQ(again.val, s.val);
  EXPECT_NE(sslab::stratified_subset(y, 0.1, 0.25, 43).train, s.train);
  // Every class keeps at least one sample; the whole set at fraction 1.
  sslab::LabelSubset tiny = sslab::stratified_subset(y, 0.001, 0.0, 1);
  EXPECT_EQ(tiny.train.size(), 3u);
  EXPECT_EQ(class_counts(y, tiny.train).size(), 3u);
  EXPECT_EQ(sslab::stratified_subset(y, 1.0, 0.0, 1).train.size(), 700u);
  // Multi-hot labels: strata are label sets.
  torch::Tensor multi = torch::zeros({100, 3}, torch::kFloat32);
  for (int64_t i = 0; i < 100; ++i) multi[i][i % 3] = 1, multi[i][(i + 1) % 3] = 1;
  sslab::LabelSubset m = sslab::stratified_subset(multi, 0.3, 0.0, 5);
  EXPECT_EQ(m.train.size(), 10u + 10u + 10u);  // round(0.3 * 33 or 34) per label set
  EXPECT_NE(sslab_test::user_error([&] { sslab::stratified_subset(y, 0.0, 0.1, 1); }).find("(0, 1]"),
            std::string::npos);
}

TEST(Protocols, FewShotEpisodesAreReproducibleAndSeparateWhatIsSeparable) {
  torch::manual_seed(0);
  // Three classes around orthogonal directions, and the same points with labels shuffled.
  const int64_t per = 40;
  torch::Tensor centres = torch::eye(3) * 4;
  torch::Tensor y = torch::arange(3).repeat_interleave(per);
  torch::Tensor x = centres.index_select(0, y) + 0.3 * torch::randn({3 * per, 3});
  torch::Tensor xt = centres.index_select(0, y) + 0.3 * torch::randn({3 * per, 3});
  sslab::FewShotOptions o;
  o.shots = 5;
  o.episodes = 40;
  o.seed = 7;
  sslab::FewShotResult r = sslab::few_shot_accuracy(x, y, xt, y, o);
  EXPECT_DOUBLE_EQ(r.prototype, 1.0);
  EXPECT_DOUBLE_EQ(r.prototype_ci95, 0.0);
  EXPECT_GT(r.logistic, 0.99);
  EXPECT_EQ(r.ways, 3);
  sslab::FewShotResult again = sslab::few_shot_accuracy(x, y, xt, y, o);
  EXPECT_DOUBLE_EQ(again.logistic, r.logistic);
  torch::Tensor noise = torch::randn({3 * per, 3}), noise_t = torch::randn({3 * per, 3});
  sslab::FewShotResult chance = sslab::few_shot_accuracy(noise, y, noise_t, y, o);
  EXPECT_NEAR(chance.prototype, 1.0 / 3, 0.1);
  EXPECT_GT(chance.prototype_ci95, 0.0);
  // Another seed draws other episodes.
  o.seed = 8;
  EXPECT_NE(sslab::few_shot_accuracy(noise, y, noise_t, y, o).prototype, chance.prototype);
  o.shots = 50;  // more than any class has
  EXPECT_NE(sslab_test::user_error([&] { sslab::few_shot_accuracy(x, y, xt, y, o); }).find("50 training samples"),
            std::string::npos);
}

// Points in the plane away from the diagonal, label = (x0 > x1); in the test
// split every 10th label is flipped, so the best possible accuracy is 0.9.
class Diagonal : public sslab::Dataset {
 public:
  Diagonal(int64_t n, uint64_t seed, bool flip) : n_(n), seed_(seed), flip_(flip) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 2; }
  sslab::Sample get(int64_t i) const override {
    sslab::Rng rng(sslab::mix_seed(seed_, static_cast<uint64_t>(i)));
    std::uniform_real_distribution<float> u(-1, 1);
    float a = 0, b = 0;
    do {
      a = u(rng), b = u(rng);
    } while (std::abs(a - b) < 0.2f);
    int64_t label = a > b ? 1 : 0;
    if (flip_ && i % 10 == 0) label = 1 - label;
    return {{"x", torch::tensor({a, b})}, {"label", torch::tensor(label)}};
  }

 private:
  int64_t n_;
  uint64_t seed_;
  bool flip_;
};

struct TinyEncoder : sslab::Encoder {
  TinyEncoder() {
    fc = register_module("fc", torch::nn::Linear(2, 8));
    set_input("x");
  }
  torch::Tensor embed(const sslab::Batch& b) override { return torch::tanh(fc(b.at("x"))); }
  int64_t embed_dim() const override { return 8; }
  torch::nn::Linear fc{nullptr};
};

TEST(Protocols, FinetuneReachesTheHandCheckedAccuracy) {
  torch::manual_seed(3);
  auto enc = std::make_shared<TinyEncoder>();
  sslab::FinetuneTask task;
  task.train = std::make_shared<Diagonal>(400, 1, false);
  task.test = std::make_shared<Diagonal>(1000, 2, true);
  task.classes = 2;
  sslab::LabelSubset all = sslab::stratified_subset(torch::tensor(std::vector<int64_t>(400, 0)), 1.0, 0.1, 0);
  sslab::FinetuneSettings s;
  s.lr = 1e-2;
  s.min_steps = 300;
  s.workers = 0;
  sslab::FinetuneTrace t = sslab::finetune_encoder(enc, task, all, s, 1, 2, torch::kCPU);
  EXPECT_EQ(all.train.size(), 360u);
  EXPECT_EQ(all.val.size(), 40u);
  // The rule is learnt (validation: no flipped labels), so the test accuracy
  // is that of the rule on the flipped test labels: 900 of 1000.
  EXPECT_DOUBLE_EQ(t.val, 1.0);
  EXPECT_NEAR(t.test, 0.9, 0.005);
  EXPECT_GT(t.best_step, 0);
  EXPECT_LE(t.steps, 300);
}

std::string protocol_recipe(const std::string& extra) {
  return R"(name = "toy"
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = 400
classes = 4
[data.test]
type = "template.blobs"
size = 200
classes = 4
[encoders.main]
type = "template.mlp"
[[objectives]]
type = "template.reconstruct"
[train]
steps = 1
threads = 1
[log]
progress = "none"
)" + extra;
}

TEST(Protocols, FinetuneArmsShareEverySettingButTheInitialWeights) {
  sslab_test::TempDir dir;
  std::string file = dir.write("recipe.toml", protocol_recipe(R"(
[eval]
protocols = ["finetune"]
[eval.finetune]
fractions = [0.1, 0.5]
seeds = 2
min_steps = 20
max_steps = 40
workers = 0
)"));
  sslab::PluginHost host;
  sslab::Experiment exp(sslab::Recipe::load(file), host);
  ASSERT_EQ(exp.evaluators().size(), 1u);
  EXPECT_EQ(exp.evaluators()[0].first, "[eval.finetune] (sslab.finetune)");
  auto* ft = dynamic_cast<sslab::FinetuneEvaluator*>(exp.evaluators()[0].second.get());
  ASSERT_NE(ft, nullptr);
  std::vector<sslab::FinetuneTrace> traces;
  ft->set_trace([&](const sslab::FinetuneTrace& t) { traces.push_back(t); });
  torch::Tensor trained_before = exp.context().encoder("main")->parameters()[0].clone();
  sslab::EvalResults r = sslab::evaluate(exp, "");
  // The run's own encoder is never touched by fine-tuning.
  EXPECT_TRUE(torch::equal(trained_before, exp.context().encoder("main")->parameters()[0]));
  ASSERT_EQ(traces.size(), 2u * 2u * 2u);  // fractions x seeds x arms
  torch::Tensor pool_y = torch::zeros({400}, torch::kInt64);
  {
    auto train = exp.context().dataset("train");
    for (int64_t i = 0; i < 400; ++i) pool_y[i] = train->get(i).at("label");
  }
  for (size_t i = 0; i < traces.size(); i += 2) {
    const auto &a = traces[i], &b = traces[i + 1];
    EXPECT_EQ(a.arm, "pretrained");
    EXPECT_EQ(b.arm, "scratch");
    EXPECT_EQ(a.fraction, b.fraction);
    EXPECT_EQ(a.seed_index, b.seed_index);
    EXPECT_EQ(a.subset.train, b.subset.train);
    EXPECT_EQ(a.subset.val, b.subset.val);
    EXPECT_EQ(a.settings, b.settings);
    EXPECT_EQ(a.order_seed, b.order_seed);
    EXPECT_TRUE(torch::equal(a.head_init, b.head_init));
    EXPECT_NE(a.encoder_init_sum, b.encoder_init_sum);  // only the encoder's initial weights differ
    // Stratified: each of the 4 classes gives its share.
    std::vector<int64_t> picked = a.subset.train;
    picked.insert(picked.end(), a.subset.val.begin(), a.subset.val.end());
    auto counts = class_counts(pool_y, picked);
    auto pool = class_counts(pool_y, [] {
      std::vector<int64_t> v(400);
      for (int64_t i = 0; i < 400; ++i) v[i] = i;
      return v;
    }());
    ASSERT_EQ(counts.size(), 4u);
    for (const auto& [c, n] : counts) EXPECT_EQ(n, std::llround(a.fraction * static_cast<double>(pool[c])));
  }
  // Seeds draw different subsets.
  EXPECT_NE(traces[0].subset.train, traces[2].subset.train);
  for (const char* name : {"finetune.10%.pretrained", "finetune.10%.scratch", "finetune.10%.linear_probe",
                           "finetune.50%.pretrained", "finetune.50%.scratch"}) {
    ASSERT_TRUE(r.count(name)) << name;
    EXPECT_GE(r.at(name).at("accuracy"), 0.0);
    EXPECT_LE(r.at(name).at("accuracy"), 1.0);
    EXPECT_EQ(r.at(name).at("seeds"), 2.0);
  }
  EXPECT_TRUE(r.at("finetune.10%.pretrained").count("gain_over_scratch"));
}

// Bad [eval.finetune] settings are refused when the recipe is built, naming
// the file, line and key, before any training.
TEST(Protocols, BadFinetuneSettingsAreNamedWhenTheRecipeIsBuilt) {
  sslab_test::TempDir dir;
  sslab::PluginHost host;
  auto error = [&](const std::string& table) {
    std::string file = dir.write("bad.toml", protocol_recipe("[eval]\nprotocols = [\"finetune\"]\n[eval.finetune]\n" + table));
    return sslab_test::user_error([&] { sslab::Experiment exp(sslab::Recipe::load(file), host); });
  };
  std::string msg = error("fractions = [0.1, 0.1]\n");
  EXPECT_NE(msg.find("eval.finetune.fractions: the fraction 0.1 is given twice"), std::string::npos) << msg;
  msg = error("fractions = [1.5]\n");
  EXPECT_NE(msg.find("eval.finetune.fractions: each fraction must be in (0, 1], got 1.5"), std::string::npos) << msg;
  msg = error("min_steps = 500\nmax_steps = 100\n");
  EXPECT_NE(msg.find("eval.finetune.min_steps: min_steps (500) must be <= max_steps (100)"), std::string::npos) << msg;
  msg = error("layer_decay = 0.7\n");  // template.mlp has no transformer blocks
  EXPECT_NE(msg.find("eval.finetune.layer_decay: layer_decay < 1 needs a transformer encoder"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("bad.toml:"), std::string::npos) << msg;
}

TEST(Protocols, LayerDecayScalesBlocksByDepthAndRefusesEncodersWithout) {
  torch::nn::Module m;
  m.register_parameter("embed", torch::zeros({4, 4}));
  auto blocks = m.register_module("blocks", torch::nn::ModuleList());
  blocks->push_back(torch::nn::Linear(4, 4));
  blocks->push_back(torch::nn::Linear(4, 4));
  m.register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
  torch::nn::Linear head(4, 2);
  auto groups = sslab::finetune_groups(m, *head, 0.05, 0.5, "test");
  // depth 2: embed 0.5^3, blocks.0 0.5^2, blocks.1 0.5, norm and head 1.
  std::map<const void*, std::pair<double, double>> by_param;
  for (const auto& g : groups)
    for (const auto& p : g.params) by_param[p.unsafeGetTensorImpl()] = {g.lr_scale, g.weight_decay};
  auto named = m.named_parameters(true);
  EXPECT_DOUBLE_EQ(by_param[named["embed"].unsafeGetTensorImpl()].first, 0.125);
  EXPECT_DOUBLE_EQ(by_param[named["blocks.0.weight"].unsafeGetTensorImpl()].first, 0.25);
  EXPECT_DOUBLE_EQ(by_param[named["blocks.1.weight"].unsafeGetTensorImpl()].first, 0.5);
  EXPECT_DOUBLE_EQ(by_param[named["blocks.1.bias"].unsafeGetTensorImpl()].second, 0.0);  // no decay on vectors
  EXPECT_DOUBLE_EQ(by_param[named["blocks.1.weight"].unsafeGetTensorImpl()].second, 0.05);
  EXPECT_DOUBLE_EQ(by_param[named["norm.weight"].unsafeGetTensorImpl()].first, 1.0);
  EXPECT_DOUBLE_EQ(by_param[head->weight.unsafeGetTensorImpl()].first, 1.0);
  torch::nn::Linear cnn(4, 4);
  std::string msg = sslab_test::user_error([&] { sslab::finetune_groups(*cnn, *head, 0.05, 0.7, "x.toml:3:1"); });
  EXPECT_NE(msg.find("x.toml:3:1: layer_decay < 1 needs a transformer encoder"), std::string::npos) << msg;
}

TEST(Protocols, EvalProtocolMergesIntoTheRunsResultsAndBadProtocolsAreNamed) {
  sslab_test::TempDir dir;
  std::string file = dir.write("recipe.toml", protocol_recipe(R"(
[eval]
probe_epochs = 2
[eval.fewshot]
shots = [1, 5]
episodes = 20
)"));
  auto train = sslab_test::run(sslab_test::sslab_cli() + " train " + file + " --out " + dir / "run");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto before = sslab_test::read_json(dir / "run/eval.json");
  ASSERT_TRUE(before.contains("linear_probe"));
  EXPECT_FALSE(before.contains("fewshot.k5"));
  auto r = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --protocol fewshot");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto after = sslab_test::read_json(dir / "run/eval.json");
  EXPECT_TRUE(after.contains("linear_probe"));  // kept
  for (const char* k : {"fewshot.k1", "fewshot.k5", "fewshot.k5.random_encoder"}) {
    ASSERT_TRUE(after.contains(k)) << k;
    EXPECT_GT(after[k]["prototype_accuracy"].get<double>(), 0.0);
  }
  EXPECT_EQ(after["fewshot.k5"]["episodes"].get<double>(), 20.0);
  auto bad = sslab_test::run(sslab_test::sslab_cli() + " eval " + dir / "run" + " --protocol finetun");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown protocol 'finetun'; did you mean 'finetune'?"), std::string::npos) << bad.err;
  std::string recipe = dir.write("bad.toml", protocol_recipe("[eval]\nprotocols = [\"probe\", \"few_shot\"]\n"));
  auto check = sslab_test::run(sslab_test::sslab_cli() + " check " + recipe);
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.err.find("bad.toml:"), std::string::npos) << check.err;
  EXPECT_NE(check.err.find("eval.protocols: unknown protocol 'few_shot'"), std::string::npos) << check.err;
  std::string typo = dir.write("typo.toml", protocol_recipe("[eval.finetune]\nfractoins = [0.1]\n"));
  check = sslab_test::run(sslab_test::sslab_cli() + " check " + typo);
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.err.find("fractoins"), std::string::npos) << check.err;
}

}  // namespace
