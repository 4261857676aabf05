// `sslab tokenizer train|encode`.
#include <cstdlib>
#include <filesystem>

#include "text_test_util.h"

namespace {

using namespace text_test;

TEST(TextTokenizerCli, TrainsEncodesAndRoundTrips) {
  TempDir dir;
  dir.write("corpus/a", fortune_text(corpus_sentences(300, 21)));
  std::string model = dir / "out/m.model";
  auto r = sslab_test::run(sslab_test::sslab_cli() + " tokenizer train --corpus " + dir / "corpus" +
                           " --vocab-size 100 --model-type bpe --out " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pieces"), std::string::npos);
  ASSERT_TRUE(std::filesystem::exists(model));
  auto e = sslab_test::run(sslab_test::sslab_cli() + " tokenizer encode --model " + model + " 'the cat sat'");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto tok = sslab::text::SentencePieceTokenizer::load(model);
  std::string expected;
  for (int64_t id : tok->encode("the cat sat")) expected += (expected.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(e.out, expected + "\n");
  auto d = sslab_test::run("printf 'the dog ran\\nbirds sing\\n' | " + sslab_test::sslab_cli() +
                           " tokenizer encode --decode --special --model " + model);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, "the dog ran\nbirds sing\n");
  // SentencePiece's own command agrees on the ids.
  if (std::system("command -v spm_encode > /dev/null 2>&1") == 0) {
    auto s = sslab_test::run("echo 'the cat sat' | spm_encode --model " + model + " --output_format=id");
    EXPECT_EQ(s.out, expected + "\n");
  }
}

TEST(TextTokenizerCli, HelpAndErrors) {
  auto h = sslab_test::run(sslab_test::sslab_cli() + " tokenizer train --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--vocab-size"), std::string::npos);
  auto top = sslab_test::run(sslab_test::sslab_cli() + " tokenizer --help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("tokenizer encode"), std::string::npos);
  auto missing = sslab_test::run(sslab_test::sslab_cli() + " tokenizer train --corpus /tmp");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--out is required"), std::string::npos) << missing.err;
  auto bad = sslab_test::run(sslab_test::sslab_cli() + " tokenizer frobnicate");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown tokenizer command 'frobnicate'"), std::string::npos) << bad.err;
  auto nomodel = sslab_test::run(sslab_test::sslab_cli() + " tokenizer encode --model /nonexistent.model hi");
  EXPECT_EQ(nomodel.exit_code, 2);
  EXPECT_NE(nomodel.err.find("/nonexistent.model"), std::string::npos) << nomodel.err;
}

}  // namespace
