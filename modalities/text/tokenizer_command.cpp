// `sslab tokenizer`: train a SentencePiece model or encode text with one, on
// their own (outside a recipe). The text plugin registers it as a command; it
// trains and loads through SentencePieceTokenizer, as text.sentencepiece does.
#include "tokenizer_command.h"

#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include <sslab/error.h>

#include "sentencepiece_tokenizer.h"

namespace sslab::text {

namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

using Args = std::vector<std::string>;

// Parses `args` against `opts` (which declares "help,h"), every positional
// argument going to `positional` when given. Returns false after printing
// the help when --help was asked for.
bool parse(const Args& args, const po::options_description& opts, const char* positional, po::variables_map& vm) {
  po::positional_options_description pos;
  if (positional) pos.add(positional, -1);
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts;
    return false;
  }
  return true;
}

int train(const Args& args) {
  po::options_description opts(
      "sslab tokenizer train --corpus PATH... --out FILE.model [options]\n"
      "Trains a SentencePiece model ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4) on the entries of the corpus");
  SentencePieceTrainOptions o;
  std::vector<std::string> corpus;
  std::string out, format;
  opts.add_options()("help,h", "show this help")("corpus", po::value(&corpus)->multitoken(),
                                                 "files or folders (folders: their regular files but *.dat)")(
      "out", po::value(&out), "the .model file to write")("format", po::value(&format)->default_value("fortune"),
                                                          "fortune (%-separated entries) or lines")(
      "model-type", po::value(&o.model_type)->default_value(o.model_type), "unigram or bpe")(
      "vocab-size", po::value(&o.vocab_size)->default_value(o.vocab_size), "pieces, special tokens included")(
      "character-coverage", po::value(&o.character_coverage)->default_value(o.character_coverage),
      "share of characters covered")("max-sentences", po::value(&o.max_sentences)->default_value(o.max_sentences),
                                     "train on a fixed sample of this many entries (0: all)");
  po::variables_map vm;
  if (!parse(args, opts, nullptr, vm)) return 0;
  if (corpus.empty()) throw po::error("--corpus is required");
  if (out.empty()) throw po::error("--out is required");
  for (const auto& c : corpus) o.corpus.push_back(fs::absolute(c).string());
  o.format = parse_format(format);
  std::string target = fs::absolute(out).string();
  SentencePieceTokenizer::train(o, target);  // writes the file atomically
  std::cout << target << ": " << SentencePieceTokenizer::load(target)->vocab_size() << " pieces\n";
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
  po::variables_map vm;
  if (!parse(args, opts, "text", vm)) return 0;
  if (model.empty()) throw po::error("--model is required");
  auto tok = SentencePieceTokenizer::load(fs::absolute(model).string());
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

int tokenizer_command(const std::vector<std::string>& args) {
  const char* usage =
      "usage: sslab tokenizer train --corpus PATH... --out FILE.model [options]\n"
      "       sslab tokenizer encode --model FILE.model [TEXT...]\n"
      "run 'sslab tokenizer train --help' or 'sslab tokenizer encode --help' for the options\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  try {
    if (args[0] == "train") return train(rest);
    if (args[0] == "encode") return encode(rest);
  } catch (const po::error& e) {
    // The host sees a UserError (exit code 2), not a Boost type.
    throw UserError(str(e.what(), " (see 'sslab tokenizer ", args[0], " --help')"));
  }
  throw UserError(str("unknown tokenizer command '", args[0], "' (known: train, encode)"));
}

}  // namespace sslab::text
