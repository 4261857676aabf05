// text.sentencepiece: round trips, special tokens, in-process training and
// its cache.
#include <filesystem>

#include "text_test_util.h"

namespace {

using namespace text_test;
using sslab::text::SentencePieceTokenizer;
using sslab::text::SentencePieceTrainOptions;

TEST(TextTokenizer, RoundTripsText) {
  auto& tok = *fixture().tok;
  for (const auto& s : corpus_sentences(50, /*seed=*/99)) {
    auto ids = tok.encode(s);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids), s);
  }
  // Words never seen in training still round trip through smaller pieces or [UNK].
  std::string unseen = "the cat sat on the old mill";
  EXPECT_EQ(tok.decode(tok.encode(unseen)), unseen);
}

TEST(TextTokenizer, SpecialTokensHaveFixedIdsAndNeverComeFromText) {
  auto& tok = *fixture().tok;
  EXPECT_EQ(tok.special_id("[PAD]"), 0);
  EXPECT_EQ(tok.special_id("[UNK]"), 1);
  EXPECT_EQ(tok.special_id("[CLS]"), 2);
  EXPECT_EQ(tok.special_id("[SEP]"), 3);
  EXPECT_EQ(tok.special_id("[MASK]"), 4);
  EXPECT_EQ(tok.special_id("[NOPE]"), -1);
  EXPECT_EQ(tok.special_id("cat"), -1);
  EXPECT_LE(tok.vocab_size(), 120);
  EXPECT_GT(tok.vocab_size(), 40);
  // The literal strings are text, not the control tokens.
  for (int64_t id : tok.encode("[MASK] [CLS] the [SEP] [PAD]")) {
    EXPECT_NE(id, 0);
    EXPECT_NE(id, 2);
    EXPECT_NE(id, 3);
    EXPECT_NE(id, 4);
  }
  // Decoding drops control tokens.
  auto ids = tok.encode("the cat");
  std::vector<int64_t> wrapped = {2};
  wrapped.insert(wrapped.end(), ids.begin(), ids.end());
  wrapped.push_back(3);
  EXPECT_EQ(tok.decode(wrapped), "the cat");
  // Characters outside the training alphabet map to [UNK].
  auto unk = tok.encode("\xe6\xbc\xa2");  // a CJK character
  EXPECT_NE(std::find(unk.begin(), unk.end(), 1), unk.end());
  EXPECT_NE(user_error([&] { tok.decode({tok.vocab_size()}); }).find("outside the vocabulary"), std::string::npos);
}

TEST(TextTokenizer, CacheIsReusedAndRetrainedWhenOptionsOrCorpusChange) {
  TempDir dir;
  std::string corpus = dir.write("c/a", fortune_text(corpus_sentences(200, 5)));
  SentencePieceTrainOptions o;
  o.corpus = {dir / "c"};
  o.vocab_size = 80;
  bool trained = false;
  std::string f1, f2, f3, f4;
  SentencePieceTokenizer::train_or_load(o, dir / "cache", &trained, &f1);
  EXPECT_TRUE(trained);
  auto t2 = SentencePieceTokenizer::train_or_load(o, dir / "cache", &trained, &f2);
  EXPECT_FALSE(trained);
  EXPECT_EQ(f1, f2);
  EXPECT_EQ(t2->decode(t2->encode("the dog ran")), "the dog ran");
  o.model_type = "bpe";
  SentencePieceTokenizer::train_or_load(o, dir / "cache", &trained, &f3);
  EXPECT_TRUE(trained);
  EXPECT_NE(f3, f1);
  dir.write("c/a", fortune_text(corpus_sentences(200, 6)));  // same options, other corpus bytes
  SentencePieceTokenizer::train_or_load(o, dir / "cache", &trained, &f4);
  EXPECT_TRUE(trained);
  EXPECT_NE(f4, f3);
}

TEST(TextTokenizer, BuiltFromARecipeTrainsIntoTheCacheDir) {
  TempDir dir;
  dir.write("data/a", fortune_text(corpus_sentences(200, 7)));
  Env env("[tokenizers.text]\ntype = \"text.sentencepiece\"\ncorpus = [\"" + dir / "data" +
          "\"]\nvocab_size = 90\nmodel_type = \"bpe\"\ncache_dir = \"" + dir / "cache" + "\"\n");
  auto tok = env.tokenizer("text");
  EXPECT_EQ(tok->special_id("[MASK]"), 4);
  int models = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache")) models += e.path().extension() == ".model";
  EXPECT_EQ(models, 1);
}

TEST(TextTokenizer, ErrorsNameTheFileOrKey) {
  EXPECT_NE(user_error([] { SentencePieceTokenizer::load("/nonexistent/x.model"); }).find("/nonexistent/x.model"),
            std::string::npos);
  Env env("[tokenizers.text]\ntype = \"text.sentencepiece\"\n");
  std::string msg = user_error([&] { env.tokenizer("text"); });
  EXPECT_NE(msg.find("tokenizers.text.corpus"), std::string::npos) << msg;
}

}  // namespace
