// sslab tokenizer: train a SentencePiece model or encode text with one, on
// their own (outside a recipe). Goes through the text plugin's
// text.sentencepiece tokenizer, so the command and recipes train the same way.

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "sslab/components.h"
#include "sslab/files.h"
#include "sslab/host/plugin_host.h"
#include "sslab/recipe.h"
#include "sslab/host/recipe_schema.h"

namespace sslab::cli {

namespace {

namespace fs = std::filesystem;

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Builds [tokenizers.t] from `keys` (TOML lines) through the text plugin.
std::shared_ptr<Tokenizer> build_tokenizer(const std::string& keys) {
  std::string text = "[plugins]\nload = [\"text\"]\n[tokenizers.t]\ntype = \"text.sentencepiece\"\n" + keys;
  Recipe recipe = Recipe::parse_string(text, "<sslab tokenizer>");
  PluginHost host;
  load_recipe_plugins(recipe, host);
  validate_recipe(recipe, Registries::global());
  BuildContext ctx(recipe, Registries::global());
  RecipeNode node = recipe.at("tokenizers.t");
  Config cfg = component_config(node, ComponentKind::Tokenizer, Registries::global());
  return Registries::global().tokenizers.at("text.sentencepiece").factory(cfg, ctx);
}

int train(const Args& args) {
  po::options_description opts(
      "sslab tokenizer train --corpus PATH... --out FILE.model [options]\n"
      "Trains a SentencePiece model ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4) on the entries of the corpus");
  std::vector<std::string> corpus;
  std::string out, format = "fortune", model_type = "unigram";
  int64_t vocab_size = 8000, max_sentences = 0;
  double coverage = 0.9995;
  opts.add_options()("help,h", "show this help")("corpus", po::value(&corpus)->multitoken(),
                                                 "files or folders (folders: their regular files but *.dat)")(
      "out", po::value(&out), "the .model file to write")("format", po::value(&format)->default_value("fortune"),
                                                          "fortune (%-separated entries) or lines")(
      "model-type", po::value(&model_type)->default_value("unigram"), "unigram or bpe")(
      "vocab-size", po::value(&vocab_size)->default_value(8000), "pieces, special tokens included")(
      "character-coverage", po::value(&coverage)->default_value(0.9995), "share of characters covered")(
      "max-sentences", po::value(&max_sentences)->default_value(0),
      "train on a fixed sample of this many entries (0: all)");
  po::variables_map vm;
  if (!parse_args(args, opts, nullptr, vm)) return 0;
  if (corpus.empty()) throw po::error("--corpus is required");
  if (out.empty()) throw po::error("--out is required");
  fs::path target = fs::absolute(out);
  fs::path tmp = target.parent_path() / (".sslab-tokenizer-" + std::to_string(::getpid()));
  std::ostringstream keys;
  keys << "corpus = [";
  for (size_t i = 0; i < corpus.size(); ++i) keys << (i ? ", " : "") << toml_string(fs::absolute(corpus[i]).string());
  keys << "]\nformat = " << toml_string(format) << "\nmodel_type = " << toml_string(model_type)
       << "\nvocab_size = " << vocab_size << "\ncharacter_coverage = " << coverage
       << "\nmax_sentences = " << max_sentences << "\ncache_dir = " << toml_string(tmp.string()) << "\n";
  fs::create_directories(target.parent_path());
  try {
    auto tok = build_tokenizer(keys.str());
    for (const auto& e : fs::directory_iterator(tmp)) {
      if (e.path().extension() == ".model") {
        fs::rename(e.path(), target);
        break;
      }
    }
    remove_tree(tmp.string());  // not fs::remove_all: see sslab/files.h
    std::cout << target.string() << ": " << tok->vocab_size() << " pieces\n";
  } catch (...) {
    remove_tree(tmp.string());
    throw;
  }
  return 0;
}

int encode(const Args& args) {
  po::options_description opts(
      "sslab tokenizer encode --model FILE.model [TEXT...]\n"
      "Prints the ids of each TEXT argument, or of each line of standard input, one line each");
  std::string model;
  std::vector<std::string> texts;
  bool specials = false, decode = false;
  opts.add_options()("help,h", "show this help")("model", po::value(&model), "a SentencePiece .model file")(
      "special", po::bool_switch(&specials), "wrap each line in [CLS] ... [SEP] as the datasets do")(
      "decode", po::bool_switch(&decode), "print the decoded text of the ids instead (a round trip)")(
      "text", po::value(&texts)->multitoken(), "texts to encode (default: lines of standard input)");
  po::positional_options_description pos;
  pos.add("text", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (model.empty()) throw po::error("--model is required");
  auto tok = build_tokenizer("model = " + toml_string(fs::absolute(model).string()) + "\n");
  auto one = [&](const std::string& line) {
    std::vector<int64_t> ids = tok->encode(line);
    if (specials) {
      ids.insert(ids.begin(), tok->special_id("[CLS]"));
      ids.push_back(tok->special_id("[SEP]"));
    }
    if (decode) {
      std::cout << tok->decode(ids) << "\n";
      return;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  };
  if (!texts.empty()) {
    for (const auto& t : texts) one(t);
  } else {
    std::string line;
    while (std::getline(std::cin, line)) one(line);
  }
  return 0;
}

}  // namespace

int cmd_tokenizer(const Args& args) {
  const char* usage =
      "usage: sslab tokenizer train --corpus PATH... --out FILE.model [options]\n"
      "       sslab tokenizer encode --model FILE.model [TEXT...]\n"
      "run 'sslab tokenizer train --help' or 'sslab tokenizer encode --help' for the options\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "train") return train(rest);
  if (args[0] == "encode") return encode(rest);
  throw UserError(str("unknown tokenizer command '", args[0], "' (known: train, encode)"));
}

}  // namespace sslab::cli
