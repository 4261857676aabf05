#include "sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <unistd.h>

#include "spm_library.h"

namespace sslab::text {

namespace fs = std::filesystem;

const std::vector<std::string>& special_tokens() {
  static const std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return tokens;
}

namespace {

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\0", 1);
  }
};

}  // namespace

std::vector<std::string> corpus_files(const SentencePieceTrainOptions& o) {
  std::vector<std::string> files = expand_paths(o.corpus, o.skip_suffixes);
  if (!o.corpus_manifest.empty())
    for (const auto& [file, label] : read_manifest(o.corpus_manifest, o.skip_suffixes)) files.push_back(file);
  return files;
}

std::string training_key(const SentencePieceTrainOptions& o) {
  Fnv f;
  f.add(str("v1|", o.model_type, "|", o.vocab_size, "|", o.character_coverage, "|", o.max_sentences, "|",
            o.max_sentence_length, "|", o.hard_vocab_limit, "|", static_cast<int>(o.format)));
  for (const auto& s : o.skip_suffixes) f.add(s);
  for (const auto& file : corpus_files(o)) {
    f.add(fs::path(file).filename().string());
    // Hashed a block at a time: a corpus file is never held whole in memory
    // here (the same key as hashing it whole, so existing caches stay valid).
    std::ifstream in(file, std::ios::binary);
    std::vector<char> block(1 << 20);
    while (in) {
      in.read(block.data(), static_cast<std::streamsize>(block.size()));
      f.add(block.data(), static_cast<size_t>(in.gcount()));
    }
    f.add("\0", 1);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(f.h));
  return buf;
}

std::shared_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_file) {
  const SpmLibrary& spm = SpmLibrary::get();
  char err[512] = {0};
  void* h = spm.load(model_file.c_str(), err, sizeof(err));
  if (!h) throw UserError(str(model_file, ": cannot load the SentencePiece model: ", err));
  std::shared_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer());
  tok->sp_ = std::shared_ptr<void>(h, [free = spm.free](void* p) { free(p); });
  tok->size_ = spm.piece_size(h);
  return tok;
}

void SentencePieceTokenizer::train(const SentencePieceTrainOptions& o, const std::string& model_file) {
  SSLAB_CHECK(o.model_type == "unigram" || o.model_type == "bpe",
              "text.sentencepiece: model_type must be unigram or bpe, got '", o.model_type, "'");
  std::vector<std::string> entries;
  for (const auto& file : corpus_files(o)) {
    for (auto& e : read_entries(file, o.format, /*skip_invalid=*/true)) {
      std::replace(e.text.begin(), e.text.end(), '\n', ' ');
      std::replace(e.text.begin(), e.text.end(), '\t', ' ');
      entries.push_back(std::move(e.text));
    }
  }
  SSLAB_CHECK(!entries.empty(), "text.sentencepiece: the corpus has no entries to train on");
  if (o.max_sentences > 0 && static_cast<int64_t>(entries.size()) > o.max_sentences) {
    std::mt19937_64 rng(12345);  // a fixed sample: the key covers the options, not a seed
    for (size_t i = entries.size() - 1; i > 0; --i) std::swap(entries[i], entries[rng() % (i + 1)]);
    entries.resize(static_cast<size_t>(o.max_sentences));
  }
  std::vector<std::pair<std::string, std::string>> args = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"num_threads", std::to_string(o.threads)},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"pad_id", "0"},
      {"pad_piece", "[PAD]"},
      {"unk_id", "1"},
      {"unk_piece", "[UNK]"},
      {"bos_id", "2"},
      {"bos_piece", "[CLS]"},
      {"eos_id", "3"},
      {"eos_piece", "[SEP]"},
      {"control_symbols", "[MASK]"},
      {"minloglevel", "2"},
  };
  std::string options, sentences;
  for (const auto& [k, v] : args) options += k + "\t" + v + "\n";
  for (const auto& e : entries) sentences += e + "\n";
  fs::path target(model_file);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  std::string tmp = model_file + ".tmp." + std::to_string(::getpid());
  char err[1024] = {0};
  if (SpmLibrary::get().train(options.c_str(), sentences.data(), sentences.size(), tmp.c_str(), err, sizeof(err))) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw UserError(str("text.sentencepiece: training failed: ", err));
  }
  fs::rename(tmp, target);
}

std::shared_ptr<SentencePieceTokenizer> SentencePieceTokenizer::train_or_load(const SentencePieceTrainOptions& o,
                                                                              const std::string& cache_dir,
                                                                              bool* trained, std::string* model_file) {
  std::string file = (fs::path(cache_dir) / ("spm-" + training_key(o) + ".model")).string();
  bool fresh = !fs::exists(file);
  if (fresh) train(o, file);
  if (trained) *trained = fresh;
  if (model_file) *model_file = file;
  return load(file);
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const SpmLibrary& spm = SpmLibrary::get();
  thread_local std::vector<int32_t> buf(1024);
  int64_t n = spm.encode(sp_.get(), text.data(), text.size(), buf.data(), static_cast<int64_t>(buf.size()));
  if (n > static_cast<int64_t>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = spm.encode(sp_.get(), text.data(), text.size(), buf.data(), n);
  }
  SSLAB_CHECK(n >= 0, "text.sentencepiece: encoding failed");
  return std::vector<int64_t>(buf.begin(), buf.begin() + n);
}

std::vector<std::string> SentencePieceTokenizer::encode_pieces(const std::string& text) const {
  std::vector<std::string> pieces;
  for (int64_t id : encode(text)) pieces.push_back(id_to_piece(id));
  return pieces;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    SSLAB_CHECK(id >= 0 && id < vocab_size(), "text.sentencepiece: id ", id, " is outside the vocabulary [0, ",
                vocab_size(), ")");
    v.push_back(static_cast<int32_t>(id));
  }
  const SpmLibrary& spm = SpmLibrary::get();
  std::string out(4 * v.size() + 16, '\0');
  int64_t n =
      spm.decode(sp_.get(), v.data(), static_cast<int64_t>(v.size()), out.data(), static_cast<int64_t>(out.size()));
  if (n > static_cast<int64_t>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = spm.decode(sp_.get(), v.data(), static_cast<int64_t>(v.size()), out.data(), n);
  }
  SSLAB_CHECK(n >= 0, "text.sentencepiece: decoding failed");
  out.resize(static_cast<size_t>(n));
  return out;
}

int64_t SentencePieceTokenizer::vocab_size() const { return size_; }

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  SSLAB_CHECK(id >= 0 && id < size_, "text.sentencepiece: id ", id, " is outside the vocabulary [0, ", size_, ")");
  char buf[256];
  int64_t n = SpmLibrary::get().id_to_piece(sp_.get(), static_cast<int32_t>(id), buf, sizeof(buf));
  SSLAB_CHECK(n >= 0, "text.sentencepiece: no piece for id ", id);
  return std::string(buf, static_cast<size_t>(std::min<int64_t>(n, sizeof(buf))));
}

int64_t SentencePieceTokenizer::special_id(const std::string& token) const {
  int64_t id = SpmLibrary::get().piece_to_id(sp_.get(), token.c_str());
  if (id < 0 || id >= size_ || id_to_piece(id) != token) return -1;
  return id;
}

std::vector<int64_t> SentencePieceTokenizer::special_ids() const {
  std::vector<int64_t> out;
  for (const auto& t : special_tokens()) {
    int64_t id = special_id(t);
    if (id >= 0) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sslab::text
