// The CPC encoder (output length, causality, padding) and the CPC loss on a
// crafted case against an independently computed value.
#include "cpc.h"
#include "audio_test_util.h"

namespace {

using audio_test::Env;
using sslab_test::user_error;

std::shared_ptr<sslab::audio::CpcEncoder> small_encoder(Env& env) {
  return std::dynamic_pointer_cast<sslab::audio::CpcEncoder>(env.encoder("audio"));
}

const char* kSmall =
    "[encoders.audio]\ntype = \"audio.cpc_encoder\"\nchannels = 8\ncontext_dim = 6\n"
    "[[objectives]]\ntype = \"audio.cpc\"\nprediction_steps = 3\nnegatives = 4\n";

TEST(CpcEncoder, OutputLengthIsTheTotalStride) {
  torch::manual_seed(0);
  Env env(kSmall);
  auto enc = small_encoder(env);
  EXPECT_EQ(enc->output_length(16000), 100);  // 10 ms frames at 16 kHz
  EXPECT_EQ(enc->output_length(1600), 10);
  EXPECT_EQ(enc->output_length(0), 0);
  for (int64_t s : {160, 320, 999, 1600, 4321, 16000}) {
    auto f = enc->frames(torch::randn({2, s}));
    EXPECT_EQ(f.z.size(1), enc->output_length(s)) << s;
    EXPECT_EQ(f.z.size(2), 8);
    EXPECT_EQ(f.c.size(2), 6);
  }
  // Padded batch: each sample's real frames follow its real length.
  auto f = enc->frames(torch::randn({3, 3200}), torch::tensor({3200, 1600, 800}, torch::kInt64));
  EXPECT_TRUE(torch::equal(f.lengths, torch::tensor({20, 10, 5}, torch::kInt64)));
  sslab::Batch b;
  b.size = 2;
  b.tensors["audio.wave"] = torch::randn({2, 1600});
  EXPECT_EQ(enc->embed(b).sizes(), (std::vector<int64_t>{2, 6}));
}

// Contexts only see the past: changing the end of the wave leaves early
// contexts unchanged (GRU and causal transformer), and padding does not
// change a clip's embedding.
TEST(CpcEncoder, ContextIsCausalAndPaddingIsIgnored) {
  for (const char* ctx : {"gru", "transformer"}) {
    torch::manual_seed(0);
    Env env(std::string("[encoders.audio]\ntype = \"audio.cpc_encoder\"\nchannels = 8\ncontext_dim = 8\nheads = 2\n"
                        "normalize_wave = false\ncontext = \"") +
            ctx + "\"\n");
    auto enc = small_encoder(env);
    enc->eval();
    torch::NoGradGuard ng;
    torch::Tensor x = torch::randn({1, 3200});
    torch::Tensor y = x.clone();
    y.slice(1, 2400).normal_();
    auto a = enc->frames(x), b = enc->frames(y);
    EXPECT_TRUE(torch::allclose(a.c.slice(1, 0, 10), b.c.slice(1, 0, 10), 1e-5, 1e-6)) << ctx;
    EXPECT_FALSE(torch::allclose(a.c.slice(1, 19), b.c.slice(1, 19))) << ctx;
    sslab::Batch one, padded;
    one.size = 1;
    one.tensors["audio.wave"] = x.slice(1, 0, 1600);
    padded.size = 1;
    padded.tensors["audio.wave"] = torch::cat({x.slice(1, 0, 1600), torch::randn({1, 1600})}, 1);
    padded.tensors["audio.wave.length"] = torch::tensor({1600}, torch::kInt64);
    EXPECT_TRUE(torch::allclose(enc->embed(one), enc->embed(padded), 1e-5, 1e-6)) << ctx;
  }
}

// Two utterances of 2 real frames padded to 3. With K = 2 and negatives from
// the same utterance, the only prediction is c_0 -> z_1 and its only negative
// is z_0 (drawn `negatives` times): loss = mean_b log(e^{p.z1} + N e^{p.z0}) - p.z1
// with p = W c_0 + b. The padded frame holds huge values that must not enter.
TEST(CpcLoss, CraftedCase) {
  torch::manual_seed(0);
  Env env(
      "[encoders.audio]\ntype = \"audio.cpc_encoder\"\nchannels = 2\ncontext_dim = 2\n"
      "[[objectives]]\ntype = \"audio.cpc\"\nprediction_steps = 2\nnegatives = 3\nnegatives_from = \"utterance\"\n");
  env.encoder("audio");
  auto cpc = std::dynamic_pointer_cast<sslab::audio::Cpc>(env.objective());
  ASSERT_TRUE(cpc);
  {
    torch::NoGradGuard ng;
    auto p = cpc->predictor(1);
    p->weight.copy_(torch::tensor({{1.0f, 0.5f}, {-0.5f, 2.0f}}));
    p->bias.copy_(torch::tensor({0.1f, -0.2f}));
  }
  sslab::audio::CpcFrames f;
  f.z = torch::tensor({{{0.3f, -0.7f}, {1.2f, 0.4f}, {1e4f, 1e4f}}, {{-1.0f, 0.5f}, {0.2f, 0.9f}, {-1e4f, 1e4f}}});
  f.c = torch::tensor({{{0.5f, 1.0f}, {-0.3f, 0.2f}, {9.0f, 9.0f}}, {{-0.8f, 0.6f}, {0.4f, -1.1f}, {9.0f, 9.0f}}});
  f.lengths = torch::tensor({2, 2}, torch::kInt64);
  auto out = cpc->compute_frames(f);

  // Independent value in double precision.
  const double W[2][2] = {{1.0, 0.5}, {-0.5, 2.0}}, bias[2] = {0.1, -0.2};
  const double z[2][2][2] = {{{0.3, -0.7}, {1.2, 0.4}}, {{-1.0, 0.5}, {0.2, 0.9}}};
  const double c0[2][2] = {{0.5, 1.0}, {-0.8, 0.6}};
  double total = 0;
  int correct = 0;
  for (int b = 0; b < 2; ++b) {
    double p[2];
    for (int i = 0; i < 2; ++i) p[i] = W[i][0] * c0[b][0] + W[i][1] * c0[b][1] + bias[i];
    double pos = p[0] * z[b][1][0] + p[1] * z[b][1][1];
    double neg = p[0] * z[b][0][0] + p[1] * z[b][0][1];
    total += std::log(std::exp(pos) + 3 * std::exp(neg)) - pos;
    correct += pos > neg;
  }
  EXPECT_NEAR(out.loss.item<double>(), total / 2, 1e-5);
  EXPECT_NEAR(out.metrics.at("accuracy_k1"), correct / 2.0, 1e-12);
  EXPECT_EQ(out.metrics.count("accuracy_k2"), 0u);  // no real target two frames ahead
  // Gradients reach the predictor.
  out.loss.backward();
  EXPECT_GT(cpc->predictor(1)->weight.grad().abs().sum().item<double>(), 0);
}

// Batch and same-speaker negatives: the full objective on periodic signals
// stays finite and its loss falls under a few optimizer steps.
TEST(CpcLoss, BatchAndSpeakerNegativesTrainTheEncoder) {
  for (const char* from : {"batch", "speaker"}) {
    torch::manual_seed(0);
    Env env(std::string("[encoders.audio]\ntype = \"audio.cpc_encoder\"\nchannels = 16\ncontext_dim = 16\n"
                        "[[objectives]]\ntype = \"audio.cpc\"\nprediction_steps = 4\nnegatives = 8\n"
                        "negatives_from = \"") +
            from + "\"\n");
    auto enc = env.encoder("audio");
    auto cpc = env.objective();
    sslab::Batch b;
    b.size = 4;
    // Periodic signals: the future is predictable from the past.
    torch::Tensor t = torch::arange(3200, torch::kFloat32).unsqueeze(0) / 16000.0;
    torch::Tensor f0 = torch::tensor({110.f, 220.f, 330.f, 440.f}).unsqueeze(1);
    b.tensors["audio.wave"] = torch::sin(2 * M_PI * f0 * t) * torch::sin(2 * M_PI * 3 * t);
    b.tensors["label.speaker"] = torch::tensor({0, 0, 1, 1}, torch::kInt64);
    std::vector<torch::Tensor> params = enc->parameters();
    for (auto& p : cpc->parameters()) params.push_back(p);
    torch::optim::Adam opt(params, 3e-3);
    double first = 0, last = 0;
    for (int step = 0; step < 40; ++step) {
      auto out = cpc->compute(b);
      ASSERT_TRUE(std::isfinite(out.loss.item<double>())) << from;
      if (step == 0) first = out.loss.item<double>();
      last = out.loss.item<double>();
      opt.zero_grad();
      out.loss.backward();
      opt.step();
    }
    EXPECT_LT(last, 0.7 * first) << from;
  }
  Env env(
      "[encoders.audio]\ntype = \"audio.cpc_encoder\"\n[[objectives]]\ntype = \"audio.cpc\"\n"
      "negatives_from = \"speaker\"\nspeaker_key = \"label.who\"\n");
  env.encoder("audio");
  auto cpc = env.objective();
  sslab::Batch b;
  b.size = 1;
  b.tensors["audio.wave"] = torch::randn({1, 3200});
  std::string msg = user_error([&] { cpc->compute(b); });
  EXPECT_NE(msg.find("needs the batch key 'label.who'"), std::string::npos) << msg;
}

TEST(CpcLoss, ObjectiveRefusesAnotherEncoderType) {
  std::string msg = user_error([] {
    Env env("[encoders.audio]\ntype = \"audio.cpc_encoder\"\n[[objectives]]\ntype = \"audio.cpc\"\nencoder = \"x\"\n");
    env.encoder("audio");
    env.objective();
  });
  EXPECT_NE(msg.find("objectives"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;
}

}  // namespace
