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
#include <sslab/plugin_host.h>
#include <sslab/recipe_schema.h>

#include "sentencepiece_tokenizer.h"
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

inline sslab::Registries& registries() {
  static bool loaded = [] {
    static sslab::PluginHost host(sslab::Registries::global());
    host.load_file(SSLAB_TEXT_PLUGIN_FILE);
    return true;
  }();
  (void)loaded;
  return sslab::Registries::global();
}

// A recipe and a BuildContext over it; builds its components by section.
class Env {
 public:
  explicit Env(const std::string& toml)
      : recipe_(sslab::Recipe::parse_string(toml, "text_test.toml")), ctx_(recipe_, registries()) {}
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  sslab::BuildContext& ctx() { return ctx_; }

  std::shared_ptr<sslab::Tokenizer> tokenizer(const std::string& name) {
    auto node = recipe_.at("tokenizers." + name);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Tokenizer, registries());
    return ctx_.tokenizers[name] = registries().tokenizers.at(node.required_string("type")).factory(cfg, ctx_);
  }
  // Builds [tokenizers.*] first, as the platform does.
  std::shared_ptr<sslab::Dataset> dataset(const std::string& split) {
    auto toks = recipe_.at("tokenizers");
    if (toks.exists())
      for (const auto& name : toks.keys())
        if (!ctx_.tokenizers.count(name)) tokenizer(name);
    auto node = recipe_.at("data." + split);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Dataset, registries());
    return ctx_.datasets[split] = registries().datasets.at(node.required_string("type")).factory(cfg, ctx_);
  }
  std::shared_ptr<sslab::Encoder> encoder(const std::string& name) {
    auto node = recipe_.at("encoders." + name);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Encoder, registries());
    return ctx_.encoders[name] = registries().encoders.at(node.required_string("type")).factory(cfg, ctx_);
  }
  std::shared_ptr<sslab::Objective> objective(size_t i = 0) {
    auto node = recipe_.root().table_array("objectives").at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Objective, registries());
    return registries().objectives.at(node.required_string("type")).factory(cfg, ctx_);
  }
  std::shared_ptr<sslab::Evaluator> evaluator(size_t i = 0) {
    auto node = recipe_.root().table_array("evaluators").at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Evaluator, registries());
    return registries().evaluators.at(node.required_string("type")).factory(cfg, ctx_);
  }

 private:
  sslab::Recipe recipe_;
  sslab::BuildContext ctx_;
};

// TOML for a [tokenizers.text] section loading the fixture's model.
inline std::string tokenizer_toml() {
  return "[tokenizers.text]\ntype = \"text.sentencepiece\"\nmodel = \"" + fixture().model + "\"\n";
}

}  // namespace text_test
