// The text encoder, BERT masking, the masked-LM loss (against an independent
// float64 computation) and the TF-IDF features.
#include <cmath>

#include <sslab/host/loader.h>

#include "mlm.h"
#include "text_encoder.h"
#include "text_test_util.h"
#include "tfidf.h"

namespace {

using namespace text_test;
using sslab::text::Mlm;
using sslab::text::mlm_mask;
using sslab::text::MlmMask;
using sslab::text::MlmMaskOptions;
using sslab::text::TextTransformer;
using sslab::text::TextTransformerOptions;

class Seeded : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(0); }
};

using TextMasking = Seeded;
using TextEncoder = Seeded;
using TextMlm = Seeded;

TEST_F(TextMasking, RatesMatchBertAndSpecialsAndPaddingAreNeverChosen) {
  const int64_t B = 64, T = 48, V = 100;
  torch::Tensor ids = torch::randint(5, V, {B, T}, torch::kInt64);
  torch::Tensor lengths = torch::randint(10, T + 1, {B}, torch::kInt64);
  torch::Tensor pad = torch::arange(T).unsqueeze(0).ge(lengths.unsqueeze(1));  // true = padding
  ids.select(1, 0).fill_(2);                                                   // [CLS]
  for (int64_t b = 0; b < B; ++b) ids[b][lengths[b].item<int64_t>() - 1] = 3;  // [SEP]
  ids.masked_fill_(pad, 0);                                                    // [PAD]
  ids.select(1, 5).fill_(1);                                                   // some [UNK]
  torch::Tensor specials = torch::tensor({0, 1, 2, 3, 4}, torch::kInt64);
  torch::Tensor protected_ = torch::isin(ids, specials).logical_or(pad);
  torch::Tensor ordinary = torch::arange(5, V, torch::kInt64);
  const int64_t K = ordinary.numel();
  double eligible = 0, chosen = 0, masked = 0, randomised = 0, kept = 0;
  for (int draw = 0; draw < 300; ++draw) {
    MlmMask m = mlm_mask(ids, protected_, 4, ordinary, MlmMaskOptions());
    ASSERT_FALSE(m.selected.logical_and(protected_).any().item<bool>()) << "a special token or padding was chosen";
    ASSERT_TRUE(m.inputs.masked_select(protected_).equal(ids.masked_select(protected_)));
    ASSERT_TRUE(m.labels.masked_select(m.selected.logical_not()).eq(-100).all().item<bool>());
    ASSERT_TRUE(m.labels.masked_select(m.selected).equal(ids.masked_select(m.selected)));
    torch::Tensor in = m.inputs.masked_select(m.selected), orig = ids.masked_select(m.selected);
    torch::Tensor replaced = in.ne(4).logical_and(in.ne(orig));
    ASSERT_FALSE(torch::isin(in.masked_select(replaced), specials).any().item<bool>())
        << "a random replacement drew a special token";
    eligible += protected_.logical_not().sum().item<double>();
    chosen += m.selected.sum().item<double>();
    masked += in.eq(4).sum().item<double>();
    randomised += replaced.sum().item<double>();
    kept += in.eq(orig).sum().item<double>();
  }
  // ~420k eligible tokens and ~63k chosen: standard errors are below 0.002.
  EXPECT_NEAR(chosen / eligible, 0.15, 0.003);
  EXPECT_NEAR(masked / chosen, 0.80, 0.008);
  // A random replacement equals the original with probability 1/K.
  EXPECT_NEAR(randomised / chosen, 0.10 * (1.0 - 1.0 / K), 0.006);
  EXPECT_NEAR(kept / chosen, 0.10 + 0.10 / K, 0.006);
}

TEST_F(TextMasking, FollowsTorchsDefaultGenerator) {
  torch::Tensor ids = torch::randint(5, 50, {4, 20}, torch::kInt64);
  torch::Tensor prot = torch::zeros({4, 20}, torch::kBool);
  torch::Tensor ord = torch::arange(5, 50, torch::kInt64);
  torch::manual_seed(7);
  MlmMask a = mlm_mask(ids, prot, 4, ord, MlmMaskOptions());
  torch::manual_seed(7);
  MlmMask b = mlm_mask(ids, prot, 4, ord, MlmMaskOptions());
  EXPECT_TRUE(a.inputs.equal(b.inputs));
  EXPECT_TRUE(a.selected.equal(b.selected));
}

TEST_F(TextEncoder, PaddingDoesNotChangeRealTokensOrThePooledEmbedding) {
  TextTransformer enc(TextTransformerOptions().vocab_size(30).max_length(16).dim(16).depth(2).heads(2));
  enc.eval();
  torch::Tensor a = torch::tensor({{2, 7, 8, 9, 3}}, torch::kInt64);
  torch::Tensor padded = torch::tensor({{2, 7, 8, 9, 3, 0, 0, 0}, {2, 10, 11, 12, 13, 14, 15, 3}}, torch::kInt64);
  torch::Tensor mask = torch::tensor({{0, 0, 0, 0, 0, 1, 1, 1}, {0, 0, 0, 0, 0, 0, 0, 0}}, torch::kBool);
  torch::Tensor alone = enc.forward_tokens(a);
  torch::Tensor batch = enc.forward_tokens(padded, mask);
  EXPECT_TRUE(torch::allclose(alone[0], batch[0].narrow(0, 0, 5), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(enc.pool(alone, {}), enc.pool(batch, mask)[0].unsqueeze(0), 1e-5, 1e-5));
  // Without the mask the padding would leak into the real tokens.
  torch::Tensor leaky = enc.forward_tokens(padded);
  EXPECT_FALSE(torch::allclose(alone[0], leaky[0].narrow(0, 0, 5), 1e-4, 1e-4));
  // embed() reads the collated "<input>.mask" (true = real) companion.
  sslab::Batch b;
  b.tensors["text.ids"] = padded;
  b.tensors["text.ids.mask"] = mask.logical_not();
  b.size = 2;
  enc.set_input("text.ids");
  EXPECT_TRUE(torch::allclose(enc.embed(b), enc.pool(batch, mask), 1e-6, 1e-6));
  // Gradients reach every parameter.
  enc.train();
  enc.embed(b).pow(2).sum().backward();
  for (const auto& p : enc.named_parameters())
    EXPECT_TRUE(p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) << p.key();
}

// Cross-entropy of the tied head on the chosen positions, in float64 with
// plain loops, from the encoder's token outputs and the module's weights.
double reference_mlm_loss(Mlm& mlm, const torch::Tensor& tokens, const MlmMask& m) {
  auto W = mlm.transform()->weight.to(torch::kFloat64), bw = mlm.transform()->bias.to(torch::kFloat64);
  auto g = mlm.transform_norm()->weight.to(torch::kFloat64), beta = mlm.transform_norm()->bias.to(torch::kFloat64);
  auto E = mlm.encoder()->token_embedding().to(torch::kFloat64), bias = mlm.output_bias().to(torch::kFloat64);
  auto x = tokens.to(torch::kFloat64);
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), V = E.size(0);
  auto at = [](const torch::Tensor& t, std::initializer_list<int64_t> idx) {
    torch::Tensor v = t;
    for (int64_t i : idx) v = v[i];
    return v.item<double>();
  };
  double total = 0;
  int n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      if (!m.selected[b][t].item<bool>()) continue;
      std::vector<double> h(static_cast<size_t>(D));
      for (int64_t i = 0; i < D; ++i) {
        double s = at(bw, {i});
        for (int64_t j = 0; j < D; ++j) s += at(W, {i, j}) * at(x, {b, t, j});
        h[static_cast<size_t>(i)] = 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0)));
      }
      double mean = 0, var = 0;
      for (double v : h) mean += v / D;
      for (double v : h) var += (v - mean) * (v - mean) / D;
      for (int64_t i = 0; i < D; ++i)
        h[static_cast<size_t>(i)] =
            (h[static_cast<size_t>(i)] - mean) / std::sqrt(var + 1e-12) * at(g, {i}) + at(beta, {i});
      std::vector<double> logits(static_cast<size_t>(V));
      double mx = -1e300;
      for (int64_t v = 0; v < V; ++v) {
        double s = at(bias, {v});
        for (int64_t i = 0; i < D; ++i) s += h[static_cast<size_t>(i)] * at(E, {v, i});
        logits[static_cast<size_t>(v)] = s;
        mx = std::max(mx, s);
      }
      double z = 0;
      for (double l : logits) z += std::exp(l - mx);
      int64_t target = m.labels[b][t].item<int64_t>();
      total += (mx + std::log(z)) - logits[static_cast<size_t>(target)];
      ++n;
    }
  return total / n;
}

TEST_F(TextMlm, LossOnACraftedCaseMatchesAnIndependentComputation) {
  const int64_t V = 12;
  auto enc =
      std::make_shared<TextTransformer>(TextTransformerOptions().vocab_size(V).max_length(8).dim(8).depth(1).heads(2));
  enc->set_input("text.ids");
  Mlm mlm(enc, {0, 1, 2, 3}, 4, MlmMaskOptions());
  {
    torch::NoGradGuard ng;  // non-trivial head weights, so each one matters
    mlm.transform_norm()->weight.uniform_(0.5, 1.5);
    mlm.transform_norm()->bias.uniform_(-0.3, 0.3);
    mlm.named_parameters()["output_bias"].uniform_(-0.5, 0.5);
    enc->named_parameters()["token_embed.weight"].normal_(0, 0.5);
  }
  MlmMask m;
  torch::Tensor ids = torch::tensor({{2, 5, 6, 7, 3}, {2, 8, 9, 3, 0}}, torch::kInt64);
  m.selected = torch::tensor({{0, 1, 0, 1, 0}, {0, 0, 1, 0, 0}}, torch::kBool);
  m.inputs = torch::tensor({{2, 4, 6, 11, 3}, {2, 8, 9, 3, 0}}, torch::kInt64);  // [MASK], random, kept
  m.labels = torch::where(m.selected, ids, torch::full_like(ids, -100));
  torch::Tensor pad = torch::tensor({{0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}}, torch::kBool);
  Mlm::Output out = mlm.forward(m, pad);
  EXPECT_EQ(out.chosen, 3);
  torch::Tensor tokens = enc->forward_tokens(m.inputs, pad);
  double expected = reference_mlm_loss(mlm, tokens, m);
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5);
  // The output layer is the token embedding itself: changing an embedding
  // row changes that token's logit, and the head owns no copy of it.
  for (const auto& p : mlm.named_parameters(/*recurse=*/true))
    EXPECT_NE(p.value().data_ptr(), enc->token_embedding().data_ptr()) << p.key();
  out.loss.backward();
  EXPECT_GT(enc->token_embedding().grad()[5].abs().sum().item<double>(), 0);  // target rows get output gradients
}

TEST_F(TextMlm, ObjectiveFromARecipeReportsAccuracyAndPerplexity) {
  Env env(tokenizer_toml() +
          "[encoders.text]\ntype = \"text.transformer\"\ndim = 16\ndepth = 1\nheads = 2\nmax_length = 32\n"
          "[[objectives]]\ntype = \"text.mlm\"\nmask_prob = 0.5\n");
  env.tokenizer("text");
  auto enc = env.encoder("text");
  enc->set_input("text.ids");
  auto obj = env.objective();
  auto& tok = *fixture().tok;
  std::vector<sslab::Sample> samples;
  for (const auto& s : corpus_sentences(8, 3)) {
    auto ids = tok.encode(s);
    ids.insert(ids.begin(), 2);
    ids.push_back(3);
    samples.push_back({{"text.ids", torch::tensor(ids, torch::kInt64)}});
  }
  sslab::Batch batch = sslab::collate(samples);
  auto out = obj->compute(batch);
  EXPECT_NEAR(out.metrics.at("perplexity"), std::exp(out.loss.item<double>()), 1e-3 * out.metrics.at("perplexity"));
  EXPECT_GE(out.metrics.at("masked_accuracy"), 0.0);
  EXPECT_LE(out.metrics.at("masked_accuracy"), 1.0);
  EXPECT_GT(out.metrics.at("masked"), 0.0);
  // An untrained model is close to uniform over the vocabulary.
  EXPECT_NEAR(out.loss.item<double>(), std::log(static_cast<double>(tok.vocab_size())), 1.0);
}

TEST(TextTfidf, MatchesTheFormulaOnAHandWorkedCase) {
  sslab::text::Tfidf tfidf(0, {0, 2, 3});
  std::vector<std::vector<int64_t>> docs = {{2, 5, 5, 6, 3}, {2, 6, 7, 3, 0}};
  tfidf.fit(docs);
  ASSERT_EQ(tfidf.features(), 3);  // ids 5, 6, 7
  torch::Tensor x = tfidf.transform({{2, 5, 5, 6, 3}, {9, 7}});
  double idf5 = std::log(3.0 / 2.0) + 1, idf6 = 1.0;
  double a = (1 + std::log(2.0)) * idf5, b = idf6, norm = std::sqrt(a * a + b * b);
  EXPECT_NEAR(x[0][0].item<double>(), a / norm, 1e-6);
  EXPECT_NEAR(x[0][1].item<double>(), b / norm, 1e-6);
  EXPECT_NEAR(x[0][2].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(x[1][2].item<double>(), 1.0, 1e-6);  // unknown id 9 ignored
  sslab::text::Tfidf top1(1, {});
  top1.fit(docs);
  EXPECT_EQ(top1.features(), 1);  // the id in most documents: 2 (tie with 3 and 6, smallest id)
  EXPECT_NEAR(top1.transform({{2}})[0][0].item<double>(), 1.0, 1e-6);
}

}  // namespace
