// The ssl.* objectives inside an experiment: views from the loader, EMA
// targets that get no gradient and follow the online network, clear errors.
#include <gtest/gtest.h>

#include "sslab/host/experiment.h"
#include "sslab/host/trainer.h"
#include "sslab/ssl.h"
#include "test_util.h"

namespace {

using sslab_test::TempDir;

std::string recipe(const std::string& objective, const std::string& extra = "") {
  return R"(
[plugins]
load = ["template", "ssl"]
[data.train]
type = "template.blobs"
size = 64
dim = 8
classes = 4
[views]
vector = 2
[[transforms."vector@*"]]
type = "template.noise"
std = 0.3
[encoders.main]
type = "template.mlp"
in_dim = 8
hidden = 16
dim = 8
[heads.proj]
type = "ssl.mlp"
encoder = "main"
hidden = [16]
out_dim = 6
[heads.dino]
type = "ssl.dino_head"
encoder = "main"
hidden = [16]
bottleneck = 6
out_dim = 10
[heads.pred]
type = "ssl.mlp"
in_dim = 6
hidden = [16]
out_dim = 6
[[objectives]]
)" + objective + "\n" + (extra.empty() ? "[train]\nsteps = 1\n" : extra);
}

// The ssl plugin as built (the recipes list it too); plugins load once per process.
sslab::PluginHost& host() {
  static sslab::PluginHost h;
  static const bool loaded = (h.load_file(SSLAB_PLUGIN_DIR "/libsslab-ssl.so"), true);
  (void)loaded;
  return h;
}

struct Built {
  TempDir dir;
  std::unique_ptr<sslab::Experiment> exp;
  sslab::Batch batch;
  explicit Built(const std::string& text) {
    exp = std::make_unique<sslab::Experiment>(sslab::Recipe::load(dir.write("r.toml", text)), host());
    sslab::LoaderOptions lo;
    lo.batch_size = 16;
    lo.workers = 0;
    lo.views = exp->views();
    sslab::Loader loader(exp->context().dataset("train"), lo, exp->pipelines());
    batch = loader.next();
  }
};

TEST(Views, LoaderMakesIndependentlyAugmentedViews) {
  Built b(recipe("type = \"ssl.infonce\"\nencoder = \"main\"\nprojector = \"proj\""));
  ASSERT_TRUE(b.batch.has("vector@0"));
  ASSERT_TRUE(b.batch.has("vector@1"));
  ASSERT_TRUE(b.batch.has("vector"));  // the clean input stays for probes
  EXPECT_FALSE(torch::allclose(b.batch.at("vector@0"), b.batch.at("vector@1")));
  EXPECT_FALSE(torch::allclose(b.batch.at("vector@0"), b.batch.at("vector")));
  sslab::Batch v1 = sslab::select_view(b.batch, "vector", 1);
  EXPECT_TRUE(torch::equal(v1.at("vector"), b.batch.at("vector@1")));
  std::string msg = sslab_test::user_error([&] { sslab::select_view(b.batch, "vector", 2); });
  EXPECT_NE(msg.find("batch has no view 'vector@2'"), std::string::npos) << msg;
}

TEST(Views, ObjectiveWithoutViewsSaysHowToAddThem) {
  std::string text = recipe("type = \"ssl.vicreg\"\nencoder = \"main\"\nprojector = \"proj\"");
  text = text.substr(0, text.find("[views]")) + text.substr(text.find("[encoders.main]"));
  Built b(text);
  std::string msg = sslab_test::user_error([&] { b.exp->objectives()[0].objective->compute(b.batch); });
  EXPECT_NE(msg.find("add `[views] vector = 2`"), std::string::npos) << msg;
}

// Every objective trains the encoder and its heads; EMA targets get no gradient.
TEST(Objectives, GradientsReachOnlyTheOnlineNetwork) {
  for (std::string obj : {"ssl.infonce", "ssl.vicreg", "ssl.barlow_twins", "ssl.simsiam", "ssl.byol", "ssl.moco",
                          "ssl.swav", "ssl.dino"}) {
    SCOPED_TRACE(obj);
    bool predictor = obj == "ssl.simsiam" || obj == "ssl.byol";
    std::string spec = "type = \"" + obj + "\"\nencoder = \"main\"\nprojector = \"" +
                       (obj == "ssl.dino" ? "dino" : "proj") + "\"" +
                       (predictor ? "\npredictor = \"pred\"" : "") + (obj == "ssl.moco" ? "\nqueue_size = 32" : "");
    Built b(recipe(spec));
    auto& ctx = b.exp->context();
    auto out = b.exp->objectives()[0].objective->compute(b.batch);
    EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
    out.loss.backward();
    for (const auto& p : ctx.encoder("main")->named_parameters())
      EXPECT_TRUE(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) << p.key();
    bool ema = obj == "ssl.byol" || obj == "ssl.moco" || obj == "ssl.dino";
    EXPECT_EQ(sslab::HostAccess::ema_targets(ctx).size(), ema ? 2u : 0u);
    for (auto& [name, t] : sslab::HostAccess::ema_targets(ctx))
      for (const auto& p : t.target->parameters()) {
        EXPECT_FALSE(p.requires_grad()) << name;
        EXPECT_FALSE(p.grad().defined()) << name;
      }
  }
}

// SwAV: unit prototypes, frozen for the first steps, equipartitioned codes,
// and a queue that joins the codes' batch once full; all in the checkpoint.
TEST(Objectives, SwavPrototypesFreezeAndQueue) {
  Built b(recipe("type = \"ssl.swav\"\nencoder = \"main\"\nprojector = \"proj\"\nprototypes = 5\n"
                 "freeze_prototypes_steps = 1\nqueue_size = 32"));
  auto obj = b.exp->objectives()[0].objective;
  obj->train();
  torch::Tensor protos = obj->named_parameters()["prototypes"];
  ASSERT_EQ(protos.sizes(), (std::vector<int64_t>{5, 6}));
  auto buffers = obj->named_buffers();
  ASSERT_TRUE(buffers.contains("queue") && buffers.contains("queue_filled") && buffers.contains("step"));
  auto out = obj->compute(b.batch);  // step 0: prototypes frozen
  EXPECT_TRUE(torch::allclose(protos.norm(2, 1), torch::ones({5}), 1e-5, 1e-6));
  out.loss.backward();
  EXPECT_FALSE(protos.grad().defined());
  EXPECT_EQ(buffers["step"].item<int64_t>(), 1);
  EXPECT_EQ(buffers["queue_filled"].item<int64_t>(), 32);  // 2 views x 16 samples
  EXPECT_GT(out.metrics.at("prototypes_used"), 0);
  EXPECT_LE(out.metrics.at("prototypes_used"), 1);
  auto again = obj->compute(b.batch);  // step 1: trained, codes over batch + queue
  again.loss.backward();
  ASSERT_TRUE(protos.grad().defined());
  EXPECT_GT(protos.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(std::isfinite(again.loss.item<double>()));
}

// DINO: the teacher temperature warms up linearly, the centre moves towards
// the teacher's mean output in training only, and both are checkpointed.
TEST(Objectives, DinoCentreAndTeacherTemperature) {
  Built b(recipe("type = \"ssl.dino\"\nencoder = \"main\"\nprojector = \"dino\"\nwarmup_teacher_temp = 0.02\n"
                 "teacher_temp = 0.06\nwarmup_teacher_temp_steps = 4\ncenter_momentum = 0.5"));
  auto obj = b.exp->objectives()[0].objective;
  auto buffers = obj->named_buffers();
  ASSERT_TRUE(buffers.contains("center") && buffers.contains("step"));
  EXPECT_EQ(buffers["center"].sizes(), (std::vector<int64_t>{1, 10}));
  obj->train();
  std::vector<double> temps;
  for (int i = 0; i < 6; ++i) temps.push_back(obj->compute(b.batch).metrics.at("teacher_temp"));
  const std::vector<double> want{0.02, 0.03, 0.04, 0.05, 0.06, 0.06};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(temps[i], want[i], 1e-12) << i;
  EXPECT_GT(buffers["center"].abs().sum().item<double>(), 0);
  torch::Tensor c = buffers["center"].clone();
  obj->eval();
  auto out = obj->compute(b.batch);
  EXPECT_TRUE(torch::equal(buffers["center"], c));  // evaluation leaves it
  EXPECT_EQ(buffers["step"].item<int64_t>(), 6);
  EXPECT_GE(out.metrics.at("teacher_entropy"), 0);
  EXPECT_LE(out.metrics.at("teacher_entropy"), std::log(10.0) + 1e-9);
}

// Multi-crop: two global crops and two smaller local ones from [views] and
// per-view transforms; DINO's student sees all four, its teacher the global
// two (6 pairs), SwAV's codes come from the global two.
TEST(Objectives, MultiCropViewsForDinoAndSwav) {
  const std::string views = R"(
[plugins]
load = ["vision", "ssl"]
[data.train]
type = "vision.fashion_mnist"
split = "train"
limit = 64
[views]
image = 4
[[transforms."image@0"]]
type = "vision.random_resized_crop"
size = 24
scale = [0.4, 1.0]
[[transforms."image@1"]]
type = "vision.random_resized_crop"
size = 24
scale = [0.4, 1.0]
[[transforms."image@*"]]
type = "vision.random_resized_crop"
size = 12
scale = [0.05, 0.4]
[encoders.image]
type = "vision.cnn"
channels = [8, 16]
blocks = 1
[heads.dino]
type = "ssl.dino_head"
encoder = "image"
hidden = [16]
bottleneck = 8
out_dim = 12
[heads.proj]
type = "ssl.mlp"
encoder = "image"
hidden = [16]
out_dim = 8
[train]
steps = 1
[[objectives]]
)";
  Built b(views + "type = \"ssl.dino\"\nencoder = \"image\"\nprojector = \"dino\"\n");
  const std::vector<int64_t> global{16, 1, 24, 24}, local{16, 1, 12, 12};
  EXPECT_EQ(b.batch.at("image@0").sizes(), global);
  EXPECT_EQ(b.batch.at("image@1").sizes(), global);
  EXPECT_EQ(b.batch.at("image@2").sizes(), local);
  EXPECT_EQ(b.batch.at("image@3").sizes(), local);
  EXPECT_FALSE(b.batch.has("image@4"));
  auto& ctx = b.exp->context();
  auto obj = b.exp->objectives()[0].objective;
  // Evaluation mode: the centre stays 0, and the student's batch norm uses
  // running statistics, so the forwards below repeat compute()'s exactly
  // (the teacher runs in training mode either way, on the same views).
  obj->eval();
  ctx.encoder("image")->eval();
  ctx.head("dino")->eval();
  auto& targets = sslab::HostAccess::ema_targets(ctx);
  auto out = obj->compute(b.batch);
  EXPECT_EQ(out.metrics.at("views"), 4);
  {
    torch::NoGradGuard no_grad;
    auto teacher_enc = std::dynamic_pointer_cast<sslab::Encoder>(targets.at("image").target);
    auto teacher_head = std::dynamic_pointer_cast<sslab::Head>(targets.at("dino").target);
    ASSERT_TRUE(teacher_enc && teacher_head);
    std::vector<torch::Tensor> student, teacher;
    for (int v = 0; v < 4; ++v) {
      sslab::Batch view = sslab::select_view(b.batch, "image", v);
      student.push_back(ctx.head("dino")->forward(ctx.encoder("image")->embed(view)));
      if (v < 2) teacher.push_back(teacher_head->forward(teacher_enc->embed(view)));
    }
    torch::Tensor want = sslab::ssl::dino_loss(student, teacher, torch::zeros({1, 12}), 0.1, 0.04);
    EXPECT_NEAR(out.loss.item<double>(), want.item<double>(), 1e-5);
  }

  Built s(views + "type = \"ssl.swav\"\nencoder = \"image\"\nprojector = \"proj\"\nprototypes = 6\n");
  auto swav = s.exp->objectives()[0].objective->compute(s.batch);
  EXPECT_TRUE(std::isfinite(swav.loss.item<double>()));
  swav.loss.backward();
  EXPECT_GT(s.exp->context().encoder("image")->parameters().front().grad().abs().sum().item<double>(), 0);
}

TEST(Objectives, ByolTargetFollowsWithCosineMomentum) {
  Built b(recipe("type = \"ssl.byol\"\nencoder = \"main\"\nprojector = \"proj\"\npredictor = \"pred\"\nmomentum = 0.9"));
  auto& t = sslab::HostAccess::ema_targets(b.exp->context()).at("main");
  EXPECT_EQ(t.options.schedule, "cosine");
  EXPECT_DOUBLE_EQ(t.options.momentum, 0.9);
}

TEST(Objectives, MissingPredictorIsAClearError) {
  TempDir dir;
  std::string msg = sslab_test::user_error([&] {
    sslab::Experiment exp(sslab::Recipe::load(dir.write("r.toml", recipe("type = \"ssl.byol\"\nencoder = \"main\""))), host());
  });
  EXPECT_NE(msg.find("objectives.0.predictor: this objective needs a predictor head"), std::string::npos) << msg;
}

// Trained for a few steps, BYOL's target moves towards the online weights and
// the momentum ends at 1 (cosine schedule); a checkpoint restores it.
TEST(Objectives, ByolTrainsAndResumes) {
  TempDir dir;
  std::string text = recipe("type = \"ssl.byol\"\nencoder = \"main\"\nprojector = \"proj\"\npredictor = \"pred\"",
                            "[train]\nsteps = 6\nbatch_size = 16\nworkers = 0\nthreads = 1\n[log]\nevery_steps = 2\n"
                            "progress = \"none\"\n[checkpoint]\nevery_steps = 3\n");
  auto r = sslab_test::run(sslab_test::sslab_cli() + " train " + dir.write("r.toml", text) + " --out " + dir / "run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sslab_test::metric(dir / "run", "ssl.byol/loss").size(), 3u);
}

// The template's two-view objective, a few lines on the SDK's
// TwoViewObjective: its loss is minus the mean cosine of the two views'
// projections (computed here by hand), and its gradient reaches the encoder
// and the projector.
TEST(TwoViewObjective, TemplateCosineViewsIsMinusTheMeanCosineAndTrainsTheEncoder) {
  Built b(recipe("type = \"template.cosine_views\"\nencoder = \"main\"\nprojector = \"proj\""));
  auto& ctx = b.exp->context();
  auto out = b.exp->objectives()[0].objective->compute(b.batch);
  torch::Tensor z0, z1;
  {
    torch::NoGradGuard g;
    auto project = [&](const char* view) {
      sslab::Batch v = b.batch;
      v.tensors["vector"] = b.batch.at(view);
      return ctx.head("proj")->forward(ctx.encoder("main")->embed(v)).to(torch::kFloat64);
    };
    z0 = project("vector@0");
    z1 = project("vector@1");
  }
  double expected = -((z0 * z1).sum(1) / (z0.norm(2, 1) * z1.norm(2, 1))).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5);
  EXPECT_NEAR(out.metrics.at("cosine"), -expected, 1e-5);
  out.loss.backward();
  for (const auto& p : ctx.encoder("main")->named_parameters())
    EXPECT_TRUE(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) << p.key();
  for (const auto& p : ctx.head("proj")->named_parameters())
    EXPECT_TRUE(p.value().grad().defined()) << p.key();
}

// The shared keys come from the SDK's two_view_schema: a missing encoder is
// refused at its location, an unknown key too.
TEST(TwoViewObjective, SharedKeysAreValidated) {
  TempDir dir;
  std::string msg = sslab_test::user_error([&] {
    sslab::Experiment exp(sslab::Recipe::load(dir.write("r.toml", recipe("type = \"template.cosine_views\""))), host());
  });
  EXPECT_NE(msg.find("objectives.0.encoder is required"), std::string::npos) << msg;
  msg = sslab_test::user_error([&] {
    sslab::Experiment exp(sslab::Recipe::load(dir.write(
                              "r2.toml", recipe("type = \"template.cosine_views\"\nencoder = \"main\"\npredictor = \"pred\""))),
                          host());
  });
  EXPECT_NE(msg.find("objectives.0.predictor is not a known key"), std::string::npos) << msg;
}

// A recipe that names ssl.* components without loading the plugin is told which one to load.
TEST(SslPlugin, RecipeWithoutItIsToldToLoadIt) {
  TempDir dir;
  std::string text = recipe("type = \"ssl.infonce\"\nencoder = \"main\"");
  text.replace(text.find("load = [\"template\", \"ssl\"]"), 26, "load = [\"template\"]");
  auto r = sslab_test::run(sslab_test::sslab_cli() + " check " + dir.write("r.toml", text));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("heads.proj.type: unknown head 'ssl.mlp'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("add \"ssl\" to [plugins] load"), std::string::npos) << r.err;
}

}  // namespace
