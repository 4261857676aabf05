// The text plugin: the SentencePiece tokenizer, line and fortune-file
// datasets, the transformer text encoder, the masked-LM objective, the
// TF-IDF baseline evaluator and the `sslab tokenizer` command. Every
// component and the recipe keys it reads are registered here.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>

#include "mlm.h"
#include "sentencepiece_tokenizer.h"
#include "text_dataset.h"
#include "text_encoder.h"
#include "tfidf.h"
#include "tokenizer_command.h"

namespace sslab::text {
namespace {

namespace fs = std::filesystem;

// A list of paths, each resolved against the folder of the recipe file that set it.
std::vector<std::string> get_paths(const Config& c, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& p : c.get_strings(key)) {
    if (p.empty() || fs::path(p).is_absolute())
      out.push_back(p);
    else
      out.push_back((fs::path(c.node().folder_of(key)) / p).lexically_normal().string());
  }
  return out;
}

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "sslab/tokenizers").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache/sslab/tokenizers").string();
  return (fs::temp_directory_path() / "sslab-tokenizers").string();
}

// The tokenizer a component names (`tokenizer` key), from [tokenizers].
std::shared_ptr<Tokenizer> named_tokenizer(const Config& c, BuildContext& ctx, const std::string& key = "tokenizer") {
  return ctx.tokenizer(c.get_string(key), c.locate(key));
}

std::vector<int64_t> specials_of(const Tokenizer& tok) {
  std::vector<int64_t> out;
  for (const auto& t : special_tokens())
    if (tok.special_id(t) >= 0) out.push_back(tok.special_id(t));
  return out;
}

void register_tokenizers(Registrar& r) {
  Schema s;
  s.string("model", std::string(""), "an existing SentencePiece .model file; empty: train one on `corpus`");
  s.strings("corpus", std::vector<std::string>{},
            "files or folders of entries to train on (folders: their regular files)");
  s.string("corpus_manifest", std::string(""), "also train on the files of this manifest ('path<TAB>label' lines)");
  s.string("format", std::string("fortune"), "corpus format: fortune (%-separated entries) or lines")
      .choices({"fortune", "lines"});
  s.strings("skip_suffixes", std::vector<std::string>{".dat"}, "in folders, skip files whose names end so");
  s.string("model_type", std::string("unigram"), "SentencePiece model: unigram or bpe").choices({"unigram", "bpe"});
  s.integer("vocab_size", int64_t{8000}, "pieces, the 5 special tokens included").min(16);
  s.number("character_coverage", 0.9995, "share of characters the model covers (rarer ones become [UNK])")
      .greater_than(0)
      .max(1);
  s.integer("max_sentences", int64_t{0}, "train on a fixed sample of this many entries (0: all)").min(0);
  s.boolean("hard_vocab_limit", false, "fail when the corpus cannot fill vocab_size (false: fewer pieces)");
  s.string("cache_dir", std::string(""),
           "where trained models are cached as spm-<key>.model, the key covering the options and corpus bytes "
           "(empty: $XDG_CACHE_HOME/sslab/tokenizers or ~/.cache/sslab/tokenizers)");
  r.tokenizer("text.sentencepiece",
              "SentencePiece unigram/BPE tokenizer, loaded or trained in-process and cached; [PAD]=0 [UNK]=1 [CLS]=2 "
              "[SEP]=3 [MASK]=4",
              s, [](const Config& c, BuildContext&) -> std::shared_ptr<Tokenizer> {
                if (!c.get_string("model").empty()) return SentencePieceTokenizer::load(c.get_path("model"));
                SentencePieceTrainOptions o;
                o.corpus = get_paths(c, "corpus");
                o.corpus_manifest = c.get_path("corpus_manifest");
                SSLAB_CHECK(!o.corpus.empty() || !o.corpus_manifest.empty(), c.locate("corpus"),
                            ": give a `model` file, or a `corpus` (or `corpus_manifest`) to train on");
                o.skip_suffixes = c.get_strings("skip_suffixes");
                o.format = parse_format(c.get_string("format"));
                o.model_type = c.get_string("model_type");
                o.vocab_size = c.get_int("vocab_size");
                o.character_coverage = c.get_float("character_coverage");
                o.max_sentences = c.get_int("max_sentences");
                o.hard_vocab_limit = c.get_bool("hard_vocab_limit");
                std::string cache = c.get_path("cache_dir");
                if (cache.empty()) cache = default_cache_dir();
                bool trained = false;
                std::string file;
                auto tok = SentencePieceTokenizer::train_or_load(o, cache, &trained, &file);
                std::cerr << "text.sentencepiece: " << (trained ? "trained " : "reusing ") << file << " ("
                          << tok->vocab_size() << " pieces)\n";
                return tok;
              });
}

void register_datasets(Registrar& r) {
  Schema s;
  s.strings("paths", std::vector<std::string>{}, "files or folders (folders: their regular files, sorted)");
  s.string("manifest", std::string(""), "TSV of 'path<TAB>label' lines (paths relative to it), for label = manifest");
  s.strings("skip_suffixes", std::vector<std::string>{".dat"}, "in folders, skip files whose names end so");
  s.string("format", std::string("fortune"), "fortune (entries separated by '%' lines) or lines (one per line)")
      .choices({"fortune", "lines"});
  s.string("label", std::string("file"), "label = file name, parent folder name, manifest label, or none")
      .choices({"file", "dir", "manifest", "none"});
  s.string("split", std::string("all"), "all entries, or the train/test part of a seeded stratified split")
      .choices({"all", "train", "test"});
  s.number("test_fraction", 0.2, "share of each class's entries in the test split").min(0).max(1);
  s.integer("split_seed", int64_t{0}, "seed of the split (and of the sample order)").min(0);
  s.string("order", std::string("seeded"),
           "sample order: seeded (a shuffle mixing the classes) or file (as the files list them, e.g. to pair "
           "with another dataset in ssl.paired)")
      .choices({"seeded", "file"});
  s.string("tokenizer", std::string("text"), "the tokenizer (name under [tokenizers])");
  s.integer("max_length", int64_t{128}, "ids per sample, [CLS] and [SEP] included").min(2);
  s.string("long_entries", std::string("truncate"), "entries past max_length: truncate, or window (several samples)")
      .choices({"truncate", "window"});
  s.integer("window_stride", int64_t{0}, "with window: pieces between window starts (0: no overlap)").min(0);
  s.boolean("add_special", true, "wrap every sample in [CLS] ... [SEP]");
  s.string("key", std::string("text.ids"), "the sample key of the ids");
  r.dataset("text.files",
            "text entries of line or %-separated (fortune) files, labelled by file/folder/manifest, seeded "
            "train/test split; UTF-8 checked (on_error = skip drops bad entries)",
            s, [](const Config& c, BuildContext& ctx) {
              TextDatasetOptions o;
              o.paths = get_paths(c, "paths");
              o.manifest = c.get_path("manifest");
              o.skip_suffixes = c.get_strings("skip_suffixes");
              o.format = parse_format(c.get_string("format"));
              o.label = c.get_string("label");
              SSLAB_CHECK(o.label != "manifest" || !o.manifest.empty(), c.locate("label"),
                          " is \"manifest\" but no manifest is given");
              SSLAB_CHECK(o.label == "manifest" || !o.paths.empty(), c.locate("paths"), ": no files given");
              o.split = c.get_string("split");
              o.test_fraction = c.get_float("test_fraction");
              o.split_seed = static_cast<uint64_t>(c.get_int("split_seed"));
              o.order = c.get_string("order");
              o.max_length = c.get_int("max_length");
              o.long_entries = c.get_string("long_entries");
              o.window_stride = c.get_int("window_stride");
              o.add_special = c.get_bool("add_special");
              o.skip_invalid = c.get_string("on_error") == "skip";
              o.key = c.get_string("key");
              auto ds = std::make_shared<TextDataset>(o, named_tokenizer(c, ctx));
              const ReadStats& st = ds->stats();
              if (st.invalid > 0)
                std::cerr << c.node().path() << ": skipped " << st.invalid << " entries with invalid UTF-8\n";
              return ds;
            });
}

void register_encoders(Registrar& r) {
  Schema s;
  s.string("tokenizer", std::string("text"), "the tokenizer whose vocabulary is embedded (name under [tokenizers])");
  s.integer("max_length", int64_t{128}, "longest sequence (learned positions)").min(1);
  s.integer("dim", int64_t{128}, "model width").min(1);
  s.integer("depth", int64_t{2}, "transformer blocks").min(1);
  s.integer("heads", int64_t{4}, "attention heads; must divide dim").min(1);
  s.number("mlp_ratio", 4.0, "MLP hidden width / dim").greater_than(0);
  s.string("pool", std::string("mean"), "embedding: mean over real tokens, or cls (the first token)")
      .choices({"mean", "cls"});
  r.encoder("text.transformer", "token + learned positional embeddings, pre-norm transformer, mean or [CLS] pooling", s,
            [](const Config& c, BuildContext& ctx) {
              SSLAB_CHECK(c.get_int("dim") % c.get_int("heads") == 0, c.locate("heads"), " (", c.get_int("heads"),
                          ") must divide dim (", c.get_int("dim"), ")");
              auto tok = named_tokenizer(c, ctx);
              auto enc = std::make_shared<TextTransformer>(TextTransformerOptions()
                                                               .vocab_size(tok->vocab_size())
                                                               .max_length(c.get_int("max_length"))
                                                               .dim(c.get_int("dim"))
                                                               .depth(c.get_int("depth"))
                                                               .heads(c.get_int("heads"))
                                                               .mlp_ratio(c.get_float("mlp_ratio"))
                                                               .pool(c.get_string("pool")));
              enc->set_input("text.ids");
              return enc;
            });
}

void register_objectives(Registrar& r) {
  Schema s;
  s.string("encoder", std::string("text"), "the text.transformer encoder (name under [encoders])");
  s.string("tokenizer", std::string("text"), "the tokenizer (for [MASK] and the special ids)");
  s.number("mask_prob", 0.15, "share of real tokens chosen for prediction").greater_than(0).max(1);
  s.number("mask_token_prob", 0.8, "of the chosen: replaced by [MASK]").min(0).max(1);
  s.number("random_token_prob", 0.1, "of the chosen: replaced by a random ordinary token").min(0).max(1);
  r.objective("text.mlm",
              "masked language modelling (BERT): 15% of real tokens, 80/10/10 [MASK]/random/kept, head tied to the "
              "token embedding; logs masked_accuracy and perplexity",
              s, [](const Config& c, BuildContext& ctx) {
                SSLAB_CHECK(c.get_float("mask_token_prob") + c.get_float("random_token_prob") <= 1.0,
                            c.locate("random_token_prob"), ": mask_token_prob + random_token_prob must be <= 1");
                auto tok = named_tokenizer(c, ctx);
                int64_t mask_id = tok->special_id("[MASK]");
                SSLAB_CHECK(mask_id >= 0, c.locate("tokenizer"), ": the tokenizer has no [MASK] token");
                return std::make_shared<Mlm>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")),
                                             specials_of(*tok), mask_id,
                                             MlmMaskOptions()
                                                 .mask_prob(c.get_float("mask_prob"))
                                                 .mask_token_prob(c.get_float("mask_token_prob"))
                                                 .random_token_prob(c.get_float("random_token_prob")),
                                             c.locate("encoder"));
              });
}

void register_evaluators(Registrar& r) {
  using O = TfidfBaselineOptions;
  Settings<O> s;
  s.add("key", &O::key, "the sample key of the token ids");
  s.add("tokenizer", &O::tokenizer, "the tokenizer (its special ids are not features)");
  s.add("max_features", &O::max_features, "keep the ids with the highest document frequency").min(1);
  add_probe_settings(s, [](O& o) -> ProbeSettings& { return o.settings; }, kProbeKeysBase);
  r.evaluator("text.tfidf_baseline",
              "bag-of-pieces TF-IDF + the platform's linear probe on the train/test splits: baseline_tfidf_linear",
              s.schema(), [s](const Config& c, BuildContext& ctx) {
                return std::make_shared<TfidfBaseline>(s.read(c), specials_of(*named_tokenizer(c, ctx)));
              });
}

void register_components(Registrar& r) {
  register_tokenizers(r);
  register_datasets(r);
  register_encoders(r);
  register_objectives(r);
  register_evaluators(r);
  r.command("tokenizer", "train a SentencePiece model, or encode text with one", tokenizer_command);
}

}  // namespace
}  // namespace sslab::text

SSLAB_PLUGIN(
    "text", "0.1.0",
    "Text: SentencePiece tokenizer, line/fortune-file datasets, transformer encoder, masked LM, TF-IDF baseline, "
    "`sslab tokenizer`",
    sslab::text::register_components)
