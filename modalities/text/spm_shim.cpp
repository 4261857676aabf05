// A C shim over SentencePiece, loaded by the text plugin into its own linker
// namespace with dlmopen(LM_ID_NEWLM) (see spm_library.h for why). Nothing
// but plain C types crosses this boundary: every output goes into a buffer
// the caller owns, and no exception escapes.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

void set_error(char* err, size_t cap, const std::string& msg) {
  if (!err || !cap) return;
  std::strncpy(err, msg.c_str(), cap - 1);
  err[cap - 1] = '\0';
}

class LineIterator : public sentencepiece::SentenceIterator {
 public:
  LineIterator(const char* data, size_t n) : data_(data), n_(n) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    if (pos_ >= n_) {
      done_ = true;
      return;
    }
    const char* nl = static_cast<const char*>(std::memchr(data_ + pos_, '\n', n_ - pos_));
    size_t end = nl ? static_cast<size_t>(nl - data_) : n_;
    value_.assign(data_ + pos_, end - pos_);
    pos_ = end + 1;
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const char* data_;
  size_t n_, pos_ = 0;
  bool done_ = false;
  std::string value_;
};

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* sslab_spm_load(const char* path, char* err, size_t err_cap) {
  try {
    auto* sp = new sentencepiece::SentencePieceProcessor();
    auto status = sp->Load(path);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      delete sp;
      return nullptr;
    }
    return sp;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown error");
  }
  return nullptr;
}

__attribute__((visibility("default"))) void sslab_spm_free(void* h) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(h);
}

// Writes up to cap ids; returns the number of ids of the text (-1 on error).
__attribute__((visibility("default"))) int64_t sslab_spm_encode(void* h, const char* text, size_t n, int32_t* out,
                                                                int64_t cap) {
  try {
    std::vector<int> ids;
    if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(std::string(text, n), &ids).ok()) return -1;
    for (int64_t i = 0; i < static_cast<int64_t>(ids.size()) && i < cap; ++i) out[i] = ids[static_cast<size_t>(i)];
    return static_cast<int64_t>(ids.size());
  } catch (...) {
    return -1;
  }
}

// Writes up to cap bytes; returns the decoded length (-1 on error).
__attribute__((visibility("default"))) int64_t sslab_spm_decode(void* h, const int32_t* ids, int64_t n, char* out,
                                                                int64_t cap) {
  try {
    std::vector<int> v(ids, ids + n);
    std::string text;
    if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(v, &text).ok()) return -1;
    std::memcpy(out, text.data(), static_cast<size_t>(std::min<int64_t>(cap, static_cast<int64_t>(text.size()))));
    return static_cast<int64_t>(text.size());
  } catch (...) {
    return -1;
  }
}

__attribute__((visibility("default"))) int32_t sslab_spm_piece_size(void* h) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize();
}

__attribute__((visibility("default"))) int32_t sslab_spm_piece_to_id(void* h, const char* piece) {
  try {
    return static_cast<sentencepiece::SentencePieceProcessor*>(h)->PieceToId(piece);
  } catch (...) {
    return -1;
  }
}

// Writes up to cap bytes of the piece; returns its length (-1 on error).
__attribute__((visibility("default"))) int64_t sslab_spm_id_to_piece(void* h, int32_t id, char* out, int64_t cap) {
  try {
    const std::string& p = static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id);
    std::memcpy(out, p.data(), static_cast<size_t>(std::min<int64_t>(cap, static_cast<int64_t>(p.size()))));
    return static_cast<int64_t>(p.size());
  } catch (...) {
    return -1;
  }
}

// Trains on '\n'-separated sentences with "key\tvalue\n" options; writes the
// serialized model to model_path. Returns 0, or 1 with a message in err.
__attribute__((visibility("default"))) int sslab_spm_train(const char* options, const char* sentences, size_t n,
                                                           const char* model_path, char* err, size_t err_cap) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    std::string opts(options);
    size_t pos = 0;
    while (pos < opts.size()) {
      size_t nl = opts.find('\n', pos);
      std::string line = opts.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? opts.size() : nl + 1;
      size_t tab = line.find('\t');
      if (tab != std::string::npos) kwargs[line.substr(0, tab)] = line.substr(tab + 1);
    }
    LineIterator it(sentences, n);
    std::string proto;
    auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &it, &proto);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return 1;
    }
    std::ofstream out(model_path, std::ios::binary);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) {
      set_error(err, err_cap, std::string("cannot write ") + model_path);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  } catch (...) {
    set_error(err, err_cap, "unknown error");
  }
  return 1;
}

}  // extern "C"
