// Helpers for the text tests: a small seeded corpus, a tokenizer trained on
// it once per process, the text plugin loaded through the real plugin host,
// and components built from TOML snippets.
#pragma once

#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sslab/components.h>
#include <sslab/host/plugin_host.h>
#include <sslab/host/recipe_schema.h>

#include "sentencepiece_tokenizer.h"
#include "component_env.h"
#include "test_util.h"

namespace text_test {

using sslab_test::TempDir;
using sslab_test::user_error;

// Sentences over a small word list, seeded: enough for a 200-piece model.
inline std::vector<std::string> corpus_sentences(int n, uint64_t seed = 1) {
  static const char* words[] = {"the",   "cat",    "sat",   "on",      "mat",    "dog",   "ran",    "far",
                                "away",  "from",   "home",  "quickly", "slowly", "under", "bright", "stars",
                                "green", "river",  "flows", "past",    "old",    "mill",  "while",  "birds",
                                "sing",  "softly", "and",   "winds",   "blow",   "over",  "hills",  "today"};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    int len = 4 + static_cast<int>(rng() % 9);
    std::string s;
    for (int k = 0; k < len; ++k) s += std::string(k ? " " : "") + words[rng() % 32];
    out.push_back(s);
  }
  return out;
}

// The sentences as a fortune file (entries separated by '%' lines).
inline std::string fortune_text(const std::vector<std::string>& entries) {
  std::string out;
  for (const auto& e : entries) out += e + "\n%\n";
  return out;
}

// A folder with a fortune corpus and a 200-piece unigram model trained on it,
// shared by every test of the process.
struct Fixture {
  TempDir dir;
  std::string corpus;
  std::string model;
  std::shared_ptr<sslab::text::SentencePieceTokenizer> tok;
  Fixture() {
    corpus = dir.write("corpus/all", fortune_text(corpus_sentences(400)));
    sslab::text::SentencePieceTrainOptions o;
    o.corpus = {corpus};
    o.vocab_size = 120;
    model = dir / "model/text.model";
    sslab::text::SentencePieceTokenizer::train(o, model);
    tok = sslab::text::SentencePieceTokenizer::load(model);
  }
};

inline Fixture& fixture() {
  static Fixture f;
  return f;
}

inline sslab::Registries& registries() { return sslab_test::registries_with(SSLAB_TEXT_PLUGIN_FILE); }

// A recipe and a BuildContext over it; builds its components by section.
class Env : public sslab_test::ComponentEnv {
 public:
  explicit Env(const std::string& toml) : ComponentEnv(toml, "text_test.toml", SSLAB_TEXT_PLUGIN_FILE) {}
};

// TOML for a [tokenizers.text] section loading the fixture's model.
inline std::string tokenizer_toml() {
  return "[tokenizers.text]\ntype = \"text.sentencepiece\"\nmodel = \"" + fixture().model + "\"\n";
}

}  // namespace text_test
