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
  using O = SentencePieceOptions;
  using T = SentencePieceTrainOptions;
  auto train = [](auto field) { return [field](O& o) -> auto& { return o.train.*field; }; };
  Settings<O> s;
  s.add("model", &O::model, "an existing SentencePiece .model file; empty: train one on `corpus`").path();
  s.add("corpus", train(&T::corpus), "files or folders of entries to train on (folders: their regular files)").path();
  s.add("corpus_manifest", train(&T::corpus_manifest),
        "also train on the files of this manifest ('path<TAB>label' lines)")
      .path();
  s.schema()
      .string("format", format_name(s.prototype().train.format),
              "corpus format: fortune (%-separated entries) or lines")
      .choices({"fortune", "lines"});
  s.add("skip_suffixes", train(&T::skip_suffixes), "in folders, skip files whose names end so");
  s.add("model_type", train(&T::model_type), "SentencePiece model: unigram or bpe").choices({"unigram", "bpe"});
  s.add("vocab_size", train(&T::vocab_size), "pieces, the 5 special tokens included").min(16);
  s.add("character_coverage", train(&T::character_coverage),
        "share of characters the model covers (rarer ones become [UNK])")
      .greater_than(0)
      .max(1);
  s.add("max_sentences", train(&T::max_sentences), "train on a fixed sample of this many entries (0: all)").min(0);
  s.add("hard_vocab_limit", train(&T::hard_vocab_limit),
        "fail when the corpus cannot fill vocab_size (false: fewer pieces)");
  s.add("cache_dir", &O::cache_dir,
        "where trained models are cached as spm-<key>.model, the key covering the options and corpus bytes "
        "(empty: $XDG_CACHE_HOME/sslab/tokenizers or ~/.cache/sslab/tokenizers)")
      .path();
  r.tokenizer("text.sentencepiece",
              "SentencePiece unigram/BPE tokenizer, loaded or trained in-process and cached; [PAD]=0 [UNK]=1 [CLS]=2 "
              "[SEP]=3 [MASK]=4",
              s.schema(), [s](const Config& c, BuildContext&) -> std::shared_ptr<Tokenizer> {
                O o = s.read(c);
                if (!o.model.empty()) return SentencePieceTokenizer::load(o.model);
                SSLAB_CHECK(!o.train.corpus.empty() || !o.train.corpus_manifest.empty(), c.locate("corpus"),
                            ": give a `model` file, or a `corpus` (or `corpus_manifest`) to train on");
                o.train.format = parse_format(c.get_string("format"));
                std::string cache = o.cache_dir.empty() ? default_cache_dir() : o.cache_dir;
                bool trained = false;
                std::string file;
                auto tok = SentencePieceTokenizer::train_or_load(o.train, cache, &trained, &file);
                std::cerr << "text.sentencepiece: " << (trained ? "trained " : "reusing ") << file << " ("
                          << tok->vocab_size() << " pieces)\n";
                return tok;
              });
}

void register_datasets(Registrar& r) {
  using O = TextDatasetOptions;
  Settings<O> s;
  s.add("paths", &O::paths, "files or folders (folders: their regular files, sorted)").path();
  s.add("manifest", &O::manifest, "TSV of 'path<TAB>label' lines (paths relative to it), for label = manifest")
      .path();
  s.add("skip_suffixes", &O::skip_suffixes, "in folders, skip files whose names end so");
  s.schema()
      .string("format", format_name(s.prototype().format),
              "fortune (entries separated by '%' lines) or lines (one per line)")
      .choices({"fortune", "lines"});
  s.add("label", &O::label, "label = file name, parent folder name, manifest label, or none")
      .choices({"file", "dir", "manifest", "none"});
  s.add("split", &O::split, "all entries, or the train/test part of a seeded stratified split")
      .choices({"all", "train", "test"});
  s.add("test_fraction", &O::test_fraction, "share of each class's entries in the test split").min(0).max(1);
  s.add("split_seed", &O::split_seed, "seed of the split (and of the sample order)").min(0);
  s.add("order", &O::order,
        "sample order: seeded (a shuffle mixing the classes) or file (as the files list them, e.g. to pair "
        "with another dataset in ssl.paired)")
      .choices({"seeded", "file"});
  s.schema().string("tokenizer", "text", "the tokenizer (name under [tokenizers])");
  s.add("max_length", &O::max_length, "ids per sample, [CLS] and [SEP] included").min(2);
  s.add("long_entries", &O::long_entries, "entries past max_length: truncate, or window (several samples)")
      .choices({"truncate", "window"});
  s.add("window_stride", &O::window_stride, "with window: pieces between window starts (0: no overlap)").min(0);
  s.add("add_special", &O::add_special, "wrap every sample in [CLS] ... [SEP]");
  s.add("key", &O::key, "the sample key of the ids");
  r.dataset("text.files",
            "text entries of line or %-separated (fortune) files, labelled by file/folder/manifest, seeded "
            "train/test split; UTF-8 checked (on_error = skip drops bad entries)",
            s.schema(), [s](const Config& c, BuildContext& ctx) {
              O o = s.read(c);
              o.format = parse_format(c.get_string("format"));
              SSLAB_CHECK(o.label != "manifest" || !o.manifest.empty(), c.locate("label"),
                          " is \"manifest\" but no manifest is given");
              SSLAB_CHECK(o.label == "manifest" || !o.paths.empty(), c.locate("paths"), ": no files given");
              o.skip_invalid = c.get_string("on_error") == "skip";
              auto ds = std::make_shared<TextDataset>(o, named_tokenizer(c, ctx));
              const ReadStats& st = ds->stats();
              if (st.invalid > 0)
                std::cerr << c.node().path() << ": skipped " << st.invalid << " entries with invalid UTF-8\n";
              return ds;
            });
}

void register_encoders(Registrar& r) {
  using O = TextTransformerOptions;
  Settings<O> s;
  s.schema().string("tokenizer", "text", "the tokenizer whose vocabulary is embedded (name under [tokenizers])");
  s.add("max_length", SSLAB_ARG(O, max_length), "longest sequence (learned positions)").min(1);
  s.add("dim", SSLAB_ARG(O, dim), "model width").min(1);
  s.add("depth", SSLAB_ARG(O, depth), "transformer blocks").min(1);
  s.add("heads", SSLAB_ARG(O, heads), "attention heads; must divide dim").min(1);
  s.add("mlp_ratio", SSLAB_ARG(O, mlp_ratio), "MLP hidden width / dim").greater_than(0);
  s.add("pool", SSLAB_ARG(O, pool), "embedding: mean over real tokens, or cls (the first token)")
      .choices({"mean", "cls"});
  r.encoder("text.transformer", "token + learned positional embeddings, pre-norm transformer, mean or [CLS] pooling",
            s.schema(), [s](const Config& c, BuildContext& ctx) {
              O o = s.read(c);
              SSLAB_CHECK(o.dim() % o.heads() == 0, c.locate("heads"), " (", o.heads(), ") must divide dim (", o.dim(),
                          ")");
              auto tok = named_tokenizer(c, ctx);
              auto enc = std::make_shared<TextTransformer>(o.vocab_size(tok->vocab_size()));
              enc->set_input("text.ids");
              return enc;
            });
}

void register_objectives(Registrar& r) {
  using O = MlmMaskOptions;
  Settings<O> s;
  s.schema().string("encoder", "text", "the text.transformer encoder (name under [encoders])");
  s.schema().string("tokenizer", "text", "the tokenizer (for [MASK] and the special ids)");
  s.add("mask_prob", SSLAB_ARG(O, mask_prob), "share of real tokens chosen for prediction").greater_than(0).max(1);
  s.add("mask_token_prob", SSLAB_ARG(O, mask_token_prob), "of the chosen: replaced by [MASK]").min(0).max(1);
  s.add("random_token_prob", SSLAB_ARG(O, random_token_prob), "of the chosen: replaced by a random ordinary token")
      .min(0)
      .max(1);
  r.objective("text.mlm",
              "masked language modelling (BERT): 15% of real tokens, 80/10/10 [MASK]/random/kept, head tied to the "
              "token embedding; logs masked_accuracy and perplexity",
              s.schema(), [s](const Config& c, BuildContext& ctx) {
                O o = s.read(c);
                SSLAB_CHECK(o.mask_token_prob() + o.random_token_prob() <= 1.0, c.locate("random_token_prob"),
                            ": mask_token_prob + random_token_prob must be <= 1");
                auto tok = named_tokenizer(c, ctx);
                int64_t mask_id = tok->special_id("[MASK]");
                SSLAB_CHECK(mask_id >= 0, c.locate("tokenizer"), ": the tokenizer has no [MASK] token");
                return std::make_shared<Mlm>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")),
                                             specials_of(*tok), mask_id, o, c.locate("encoder"));
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
