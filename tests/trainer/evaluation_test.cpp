// The evaluation helpers of the SDK on constructed data with known answers
// (linear probe, kNN, the batching loop, features in one pass), and the
// host's evaluation: a result name written twice, the random-encoder twin.
#include <gtest/gtest.h>

#include <atomic>

#include "sslab/evaluation.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/experiment.h"
#include "test_util.h"

namespace {

// index -> {"x": [index, 2 index], "label": index % 3}; counts reads.
class CountingReads : public sslab::Dataset {
 public:
  explicit CountingReads(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return 3; }
  sslab::Sample get(int64_t i) const override {
    ++reads;
    return {{"x", torch::tensor({static_cast<float>(i), 2.0f * i})}, {"label", torch::tensor(i % 3)}};
  }
  mutable std::atomic<int64_t> reads{0};

 private:
  int64_t n_;
};

TEST(Evaluation, ForEachBatchHonoursLimitAndBatchSize) {
  CountingReads data(10);
  std::vector<int64_t> sizes;
  sslab::for_each_batch(data, 7, 3, [&](const sslab::Batch& b) { sizes.push_back(b.size); });
  EXPECT_EQ(sizes, (std::vector<int64_t>{3, 3, 1}));
  sizes.clear();
  sslab::for_each_batch(data, 0, 4, [&](const sslab::Batch& b) { sizes.push_back(b.size); });
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
}

TEST(Evaluation, EmbedFeaturesReadsEachSampleOnceForEveryFeatureAndLabel) {
  CountingReads data(9);
  std::vector<sslab::FeatureSpec> specs{
      {"sum", [](const sslab::Batch& b) { return b.at("x").sum(1, true); }},
      {"raw", [](const sslab::Batch& b) { return b.at("x"); }, false}};
  sslab::Features f = sslab::embed_features(data, 0, 4, torch::kCPU, specs, {"label"}, "test");
  EXPECT_EQ(data.reads.load(), 9);  // one pass, whatever the number of features
  EXPECT_EQ(f.size(), 9);
  EXPECT_EQ(f.at("sum").sizes(), (c10::IntArrayRef{9, 1}));
  EXPECT_EQ(f.at("raw").scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(f.at("sum")[4][0].item<float>(), 12.0f);
  EXPECT_TRUE(torch::equal(f.label("label"), torch::arange(9) % 3));
  std::string msg = sslab_test::user_error(
      [&] { sslab::embed_features(data, 0, 4, torch::kCPU, specs, {"label.speaker"}, "audio.label_probes"); });
  EXPECT_NE(msg.find("audio.label_probes: the samples have no 'label.speaker'"), std::string::npos) << msg;
}

TEST(Evaluation, MajorityAccuracyIsTheFloor) {
  torch::Tensor ytr = torch::tensor({0, 1, 1, 2}, torch::kInt64), yte = torch::tensor({1, 1, 0, 2}, torch::kInt64);
  EXPECT_DOUBLE_EQ(sslab::majority_accuracy(ytr, yte, 3), 0.5);
}

TEST(Evaluation, EvalModeRestoresEachModulesMode) {
  torch::nn::Linear a(2, 2), b(2, 2);
  b->eval();
  {
    sslab::EvalMode guard({a.get(), b.get()});
    EXPECT_FALSE(a->is_training());
    EXPECT_FALSE(b->is_training());
  }
  EXPECT_TRUE(a->is_training());
  EXPECT_FALSE(b->is_training());
}

TEST(Evaluation, AResultNameWrittenTwiceNamesBothEvaluators) {
  sslab::EvalResults all;
  std::map<std::string, std::string> owners;
  sslab::merge_results(all, owners, {{"linear_probe", {{"accuracy", 0.9}}}}, "[eval] (sslab.probes)");
  sslab::merge_results(all, owners, {{"items/linear_probe", {{"map", 0.5}}}}, "evaluators[0] (video.item_probe)");
  EXPECT_EQ(all.size(), 2u);
  std::string msg = sslab_test::user_error([&] {
    sslab::merge_results(all, owners, {{"linear_probe", {{"accuracy", 0.1}}}}, "evaluators[1] (mine.probe)");
  });
  EXPECT_NE(msg.find("evaluators [eval] (sslab.probes) and evaluators[1] (mine.probe) both write the result "
                     "'linear_probe'"),
            std::string::npos)
      << msg;
  EXPECT_DOUBLE_EQ(all.at("linear_probe").at("accuracy"), 0.9);  // the first one is kept
}

std::string toy_recipe(const std::string& extra) {
  return R"(name = "toy"
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = 256
[data.test]
type = "template.blobs"
size = 128
[encoders.main]
type = "template.mlp"
[[objectives]]
type = "template.reconstruct"
[train]
steps = 1
threads = 1
)" + extra;
}

TEST(Evaluation, TwoEvaluatorsWithOneResultNameAreAnErrorAtEvaluation) {
  sslab_test::TempDir dir;
  std::string file = dir.write("recipe.toml", toy_recipe(R"(
[[evaluators]]
type = "template.embedding_norm"
[[evaluators]]
type = "template.embedding_norm"
)"));
  sslab::PluginHost host;
  sslab::Experiment exp(sslab::Recipe::load(file), host);
  std::string msg = sslab_test::user_error([&] { sslab::evaluate(exp, ""); });
  EXPECT_NE(msg.find("evaluators evaluators[0] (template.embedding_norm) and evaluators[1] (template.embedding_norm) "
                     "both write the result 'template.embedding_norm'"),
            std::string::npos)
      << msg;
}

TEST(Evaluation, RandomEncoderIsAFreshSeededTwinOfTheRecipeEncoder) {
  sslab_test::TempDir dir;
  std::string file = dir.write("recipe.toml", toy_recipe(""));
  sslab::PluginHost host;
  sslab::Experiment exp(sslab::Recipe::load(file), host);
  const sslab::BuildContext& ctx = exp.context();
  auto trained = ctx.encoder("main");
  {
    torch::NoGradGuard g;
    for (auto& p : trained->parameters()) p.add_(1.0);  // "training"
  }
  auto a = sslab::random_encoder(ctx, "main"), b = sslab::random_encoder(ctx, "main");
  EXPECT_FALSE(a->is_training());
  EXPECT_EQ(a->input(), trained->input());
  auto wa = a->named_parameters()["fc1.weight"], wb = b->named_parameters()["fc1.weight"];
  EXPECT_TRUE(torch::equal(wa, wb));  // one seed per run: every evaluator gets the same twin
  EXPECT_FALSE(torch::equal(wa, trained->named_parameters()["fc1.weight"]));
  auto other = ctx.fresh_encoder("main", ctx.seed() + 1);
  EXPECT_FALSE(torch::equal(wa, other->named_parameters()["fc1.weight"]));
  std::string msg = sslab_test::user_error([&] { ctx.fresh_encoder("mian", 0, "x.toml:1:1"); });
  EXPECT_NE(msg.find("no encoder named 'mian'; did you mean 'main'?"), std::string::npos) << msg;
  EXPECT_EQ(sslab::resolve_encoder(ctx, "", "who"), "main");
}

TEST(Evaluation, KnnMatchesAHandWorkedCase) {
  // Class 0 points along +x, class 1 along +y; the test point near +y.
  torch::Tensor tr = torch::tensor({{1.0f, 0.0f}, {0.9f, 0.1f}, {0.0f, 1.0f}, {0.1f, 0.9f}, {0.2f, 0.8f}});
  torch::Tensor ytr = torch::tensor({0, 0, 1, 1, 1}, torch::kInt64);
  torch::Tensor te = torch::tensor({{0.3f, 1.0f}, {1.0f, 0.2f}});
  torch::Tensor yte = torch::tensor({1, 0}, torch::kInt64);
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 1), 1.0);
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 3), 1.0);
  // With k = 5 every point votes: class 1 has the majority (3 of 5) for both.
  EXPECT_DOUBLE_EQ(sslab::knn_accuracy(tr, ytr, te, yte, 2, 5), 0.5);
}

TEST(Evaluation, LinearProbeSeparatesSeparableClassesAndNotNoise) {
  torch::manual_seed(0);
  int64_t n = 600;
  torch::Tensor y = torch::arange(n) % 3;
  torch::Tensor x = torch::randn({n, 8});
  torch::Tensor separable = x.clone();
  separable.select(1, 0) += 4.0 * y.to(torch::kFloat32);
  sslab::ProbeOptions o;
  o.epochs = 20;
  double good = sslab::linear_probe_accuracy(separable.slice(0, 0, 400), y.slice(0, 0, 400),
                                             separable.slice(0, 400), y.slice(0, 400), 3, o);
  double chance = sslab::linear_probe_accuracy(x.slice(0, 0, 400), y.slice(0, 0, 400), x.slice(0, 400),
                                               y.slice(0, 400), 3, o);
  EXPECT_GT(good, 0.9);
  EXPECT_LT(chance, 0.5);
}

}  // namespace
