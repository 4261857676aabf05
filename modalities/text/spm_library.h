// SentencePiece, isolated in its own linker namespace.
//
// Debian's libsentencepiece carries its own copy of protobuf-lite 3.14 and
// exports its symbols; LibTorch links the system libprotobuf 3.21, which is
// loaded first, so libsentencepiece's protobuf calls bind to 3.21 and abort
// at start-up ("compiled against version 3.14.0 of the Protocol Buffer
// runtime library, which is not compatible with the installed version").
// The text plugin therefore never links libsentencepiece: a small C shim
// (spm_shim.cpp, built as sslab_text_spm.so next to the plugin) links it and
// is loaded with dlmopen(LM_ID_NEWLM), where no libprotobuf exists. Only C
// types cross: ids, bytes, caller-owned buffers. In a sanitizer build
// (SSLAB_SANITIZE) the shim alone is built uninstrumented: an instrumented
// one would start a second ASan runtime in the new namespace, which aborts
// (modalities/text/CMakeLists.txt, docs/sanitizers.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sslab::text {

class SpmLibrary {
 public:
  // The shim, loaded once: $SSLAB_TEXT_SPM_SHIM, else sslab_text_spm.so next
  // to the library holding this code, else the build tree's copy. A
  // UserError naming the paths tried when none loads.
  static const SpmLibrary& get();

  void* (*load)(const char* path, char* err, size_t err_cap) = nullptr;
  void (*free)(void* h) = nullptr;
  int64_t (*encode)(void* h, const char* text, size_t n, int32_t* out, int64_t cap) = nullptr;
  int64_t (*decode)(void* h, const int32_t* ids, int64_t n, char* out, int64_t cap) = nullptr;
  int32_t (*piece_size)(void* h) = nullptr;
  int32_t (*piece_to_id)(void* h, const char* piece) = nullptr;
  int64_t (*id_to_piece)(void* h, int32_t id, char* out, int64_t cap) = nullptr;
  int (*train)(const char* options, const char* sentences, size_t n, const char* model_path, char* err,
               size_t err_cap) = nullptr;

  std::string file;  // the shim that was loaded

 private:
  SpmLibrary();
};

}  // namespace sslab::text
