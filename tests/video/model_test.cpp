// The encoder, decoder head, frame-prediction objective and evaluation
// metrics, built through the plugin's registry from a TOML snippet.
#include "model.h"
#include "evaluators.h"
#include "video_test_util.h"

namespace {

using namespace sslab::video;

const char* kRecipe = R"(
[encoders.video]
type = "video.encoder"
width = 8
hidden = 12
[heads.decoder]
type = "video.frame_decoder"
encoder = "video"
width = 8
[[objectives]]
type = "video.frame_prediction"
context_frames = 3
predict_frames = 2
)";

// Random clips [b,t,1,32,32].
sslab::Batch clip_batch(int64_t b, int64_t t) {
  torch::manual_seed(0);
  sslab::Batch batch;
  batch.tensors["video.frames"] = torch::rand({b, t, 1, 32, 32});
  batch.size = b;
  return batch;
}

// A bright 8x8 square moving 2 px/frame right (row 4 + 4 i for clip i): learnable.
sslab::Batch moving_square_batch(int64_t b, int64_t t) {
  torch::Tensor x = torch::zeros({b, t, 1, 32, 32});
  for (int64_t i = 0; i < b; ++i)
    for (int64_t f = 0; f < t; ++f) x[i][f][0].narrow(0, 4 + 4 * i, 8).narrow(1, 2 + 2 * f, 8).fill_(1.0f);
  sslab::Batch batch;
  batch.tensors["video.frames"] = x;
  batch.size = b;
  return batch;
}

TEST(VideoModel, EncoderShapesAndEmbedding) {
  video_test::Env env(kRecipe);
  auto enc = std::dynamic_pointer_cast<VideoEncoder>(env.encoder("video"));
  ASSERT_TRUE(enc);
  EXPECT_EQ(enc->input(), "video.frames");
  sslab::Batch b = clip_batch(2, 5);
  torch::Tensor h = enc->hidden_states(b.at("video.frames"));
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 5, 12, 8, 8}));
  EXPECT_EQ(enc->embed(b).sizes(), (std::vector<int64_t>{2, 12}));
  EXPECT_EQ(enc->embed_dim(), 12);
  // The embedding is causal in time only through the GRU: changing the last
  // frame changes it, and clips are embedded independently.
  sslab::Batch c = b;
  c.tensors["video.frames"] = b.at("video.frames").clone();
  c.tensors["video.frames"][1][4].zero_();
  torch::Tensor eb = enc->embed(b), ec = enc->embed(c);
  EXPECT_TRUE(torch::allclose(eb[0], ec[0]));
  EXPECT_FALSE(torch::allclose(eb[1], ec[1]));
}

TEST(VideoModel, MsePerFrameIsTheSumOverPixelsAveragedOverFramesAndClips) {
  // Two clips, two frames of 2x2: errors chosen by hand.
  torch::Tensor pred = torch::zeros({2, 2, 1, 2, 2});
  torch::Tensor target = torch::zeros({2, 2, 1, 2, 2});
  target[0][0].fill_(0.5);    // 4 * 0.25 = 1.0
  target[1][0][0][0][0] = 1;  // 1.0
  target[0][1][0][1][1] = 1;  // 1.0 ; clip 1 frame 1: 0
  torch::Tensor m = mse_per_frame(pred, target);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{2}));
  EXPECT_DOUBLE_EQ(m[0].item<double>(), 1.0);  // (1 + 1) / 2
  EXPECT_DOUBLE_EQ(m[1].item<double>(), 0.5);  // (1 + 0) / 2
}

TEST(VideoModel, FramePredictionTrainsEncoderAndDecoder) {
  video_test::Env env(kRecipe);
  auto enc = env.encoder("video");
  auto& ctx = env.ctx();
  // Build the decoder head through the registry.
  auto& reg = video_test::registries();
  auto recipe = sslab::Recipe::parse_string(kRecipe, "video_test.toml");
  auto node = recipe.at("heads.decoder");
  sslab::HostAccess::heads(ctx)["decoder"] =
      reg.heads.at("video.frame_decoder").factory(sslab::component_config(node, sslab::ComponentKind::Head, reg), ctx);
  auto obj = env.objective(0);
  sslab::Batch b = clip_batch(2, 5);
  sslab::ObjectiveOutput out = obj->compute(b);
  ASSERT_EQ(out.loss.dim(), 0);
  EXPECT_GT(out.metrics.at("mse_per_frame"), 0);
  EXPECT_GT(out.metrics.at("copy_last_mse_per_frame"), 0);
  out.loss.backward();
  for (const auto& p : enc->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
  for (const auto& p : ctx.head("decoder")->named_parameters())
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();

  // A few steps on one learnable batch: the loss falls.
  b = moving_square_batch(3, 5);
  std::vector<torch::Tensor> params = enc->parameters();
  for (auto& p : ctx.head("decoder")->parameters()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    opt.zero_grad();
    auto o = obj->compute(b);
    o.loss.backward();
    opt.step();
    (i == 0 ? first : last) = o.loss.item<double>();
  }
  EXPECT_LT(last, 0.7 * first);
}

TEST(VideoModel, RolloutShapesAndContextCheck) {
  VideoEncoder enc(VideoEncoderOptions().channels(8).hidden(8));
  FrameDecoder dec(enc.readout_dim(), 8, 2, 1);
  torch::Tensor clip = torch::rand({2, 6, 1, 32, 32});
  Rollout r = rollout(enc, dec, clip, 4, 2, "prediction");
  EXPECT_EQ(r.logits.sizes(), (std::vector<int64_t>{2, 2, 1, 32, 32}));
  EXPECT_EQ(r.readouts.sizes(), (std::vector<int64_t>{2, 2, 16, 8, 8}));
  // The first prediction depends only on frames 0..3.
  torch::Tensor other = clip.clone();
  other.select(1, 5).zero_();
  other.select(1, 4).zero_();
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(rollout(enc, dec, other, 4, 2, "prediction").logits.select(1, 0), r.logits.select(1, 0)));
  std::string msg = sslab_test::user_error([&] { rollout(enc, dec, clip, 5, 2, "prediction"); });
  EXPECT_NE(msg.find("at most the clip's 6 frames"), std::string::npos) << msg;
}

TEST(VideoModel, LatentTargetRuns) {
  VideoEncoderOptions eo;
  eo.channels(8).hidden(8);
  auto enc = std::make_shared<VideoEncoder>(eo);
  auto target = std::make_shared<VideoEncoder>(eo);
  auto dec = std::make_shared<FrameDecoder>(enc->readout_dim(), 8, 2, 1);
  FramePrediction obj(enc, dec, FramePredictionOptions().context_frames(3).predict_frames(2).target("latent"), target);
  auto out = obj.compute(clip_batch(2, 5));
  EXPECT_GT(out.metrics.at("latent_loss"), 0);
  out.loss.backward();
  // The encoder learns from the latent loss, the decoder from the pixel loss.
  EXPECT_GT(enc->parameters()[0].grad().abs().sum().item<double>(), 0);
  EXPECT_GT(dec->parameters()[0].grad().abs().sum().item<double>(), 0);
}

TEST(VideoProbe, MultiLabelMetricsOnHandWorkedScores) {
  // 3 samples, 3 classes.
  torch::Tensor targets = torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.f}).view({3, 3});
  torch::Tensor perfect = targets * 2 - 1;
  EXPECT_DOUBLE_EQ(sslab::mean_average_precision(perfect, targets), 1.0);
  EXPECT_DOUBLE_EQ(sslab::recall_at_m(perfect, targets), 1.0);
  // Class 0 scores rank sample 1 (negative) first: AP = (1/2 + 2/3) / 2.
  torch::Tensor scores = perfect.clone();
  scores[1][0] = 5;
  const double ap0 = (0.5 + 2.0 / 3.0) / 2;
  EXPECT_NEAR(sslab::mean_average_precision(scores, targets), (ap0 + 1 + 1) / 3, 1e-12);
  // Sample 1 has m = 1 true class (1) but its top score is now class 0.
  EXPECT_NEAR(sslab::recall_at_m(scores, targets), 4.0 / 5.0, 1e-12);
}

TEST(VideoProbe, LearnsSeparableMultiLabelData) {
  torch::manual_seed(0);
  torch::Tensor y = (torch::rand({400, 4}) < 0.4).to(torch::kFloat32);
  torch::Tensor x = torch::cat({y * 2 + 0.3 * torch::randn({400, 4}), torch::randn({400, 3})}, 1);
  sslab::ProbeOptions o;
  o.epochs = 20;
  o.batch_size = 64;
  torch::Tensor scores = sslab::multilabel_probe_scores(x.slice(0, 0, 300), y.slice(0, 0, 300), x.slice(0, 300), o);
  EXPECT_GT(sslab::mean_average_precision(scores, y.slice(0, 300)), 0.95);
  // Noise features only: near the positive rate.
  torch::Tensor noise = torch::randn({400, 6});
  torch::Tensor s2 = sslab::multilabel_probe_scores(noise.slice(0, 0, 300), y.slice(0, 0, 300), noise.slice(0, 300), o);
  EXPECT_LT(sslab::mean_average_precision(s2, y.slice(0, 300)), 0.7);
}

}  // namespace

namespace {

TEST(VideoModel, BceLossNeedsASigmoidDecoderAndPixelsStayInRange) {
  VideoEncoderOptions eo;
  eo.channels(8).hidden(8);
  auto enc = std::make_shared<VideoEncoder>(eo);
  auto linear = std::make_shared<FrameDecoder>(enc->readout_dim(), 8, 2, 1, /*sigmoid_output=*/false);
  std::string msg = sslab_test::user_error([&] { FramePrediction(enc, linear, FramePredictionOptions().loss("bce")); });
  EXPECT_NE(msg.find("needs a decoder with output = \"sigmoid\""), std::string::npos) << msg;
  torch::Tensor raw = torch::tensor({-2.0f, 0.25f, 3.0f});
  EXPECT_TRUE(torch::allclose(linear->pixels(raw), torch::tensor({0.0f, 0.25f, 1.0f})));
  auto sigmoid = std::make_shared<FrameDecoder>(enc->readout_dim(), 8, 2, 1, /*sigmoid_output=*/true);
  EXPECT_TRUE(torch::allclose(sigmoid->pixels(raw), torch::sigmoid(raw)));
  FramePrediction ok(enc, sigmoid, FramePredictionOptions().loss("bce").context_frames(3).predict_frames(2));
  sslab::Batch b = moving_square_batch(2, 5);
  EXPECT_GT(ok.compute(b).loss.item<double>(), 0);
}

}  // namespace
