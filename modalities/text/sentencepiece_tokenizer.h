// The text.sentencepiece tokenizer: SentencePiece (Kudo & Richardson 2018)
// models, loaded from a .model file or trained in-process from a corpus with
// SentencePiece's own trainer and cached, so a second run reuses the model.
//
// Trained models reserve the special tokens at fixed ids:
//   0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]
// ([PAD] = 0 is also the loader's padding value). encode() returns the pieces
// of the text only; datasets add [CLS]/[SEP].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <sslab/components.h>

#include "text_reader.h"

namespace sslab::text {

// The special tokens every sslab text model has, in id order.
const std::vector<std::string>& special_tokens();

struct SentencePieceTrainOptions {
  std::vector<std::string> corpus;  // files or folders (see expand_paths)
  std::string corpus_manifest;      // and/or the files of a manifest (see read_manifest)
  std::vector<std::string> skip_suffixes = {".dat"};
  TextFormat format = TextFormat::Fortune;
  std::string model_type = "unigram";  // unigram or bpe
  int64_t vocab_size = 8000;
  double character_coverage = 0.9995;
  int64_t max_sentences = 0;           // 0: every entry; else a sample of this many
  int64_t max_sentence_length = 4192;  // bytes; longer entries are cut for training
  bool hard_vocab_limit = false;       // false: a small corpus may give fewer pieces
  int threads = 2;
};

// The recipe keys of text.sentencepiece: a model file to load, or training
// options and the cache of trained models.
struct SentencePieceOptions {
  std::string model;      // an existing .model file; empty: train one
  SentencePieceTrainOptions train;
  std::string cache_dir;  // empty: the user's cache folder
};

// The corpus files: `corpus` expanded, then the manifest's files.
std::vector<std::string> corpus_files(const SentencePieceTrainOptions& options);

// A short hex key of the options and of every corpus file's bytes: the name
// of the cached model. A changed option or corpus gives another key.
std::string training_key(const SentencePieceTrainOptions& options);

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads a .model file (a UserError naming it when it cannot).
  static std::shared_ptr<SentencePieceTokenizer> load(const std::string& model_file);
  // Trains a model on the corpus's entries and writes it to model_file
  // (atomically: a temporary file renamed into place).
  static void train(const SentencePieceTrainOptions& options, const std::string& model_file);
  // The cached model <cache_dir>/spm-<training_key>.model, trained first when
  // absent. *trained tells whether it was.
  static std::shared_ptr<SentencePieceTokenizer> train_or_load(const SentencePieceTrainOptions& options,
                                                               const std::string& cache_dir, bool* trained = nullptr,
                                                               std::string* model_file = nullptr);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override;
  int64_t special_id(const std::string& token) const override;

  std::vector<std::string> encode_pieces(const std::string& text) const;
  std::string id_to_piece(int64_t id) const;
  // Ids of the special tokens the model has (of special_tokens()), sorted.
  std::vector<int64_t> special_ids() const;

 private:
  SentencePieceTokenizer() = default;
  std::shared_ptr<void> sp_;  // a SentencePieceProcessor inside the shim's namespace (spm_library.h)
  int64_t size_ = 0;
};

}  // namespace sslab::text
