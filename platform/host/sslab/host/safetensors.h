// The safetensors format (Hugging Face; used by timm, open_clip and the
// transformers library): a little-endian uint64 header length N, N bytes of
// JSON ({"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin,
// end]}, ..., "__metadata__": {"key": "value"}}, padded with spaces to a
// multiple of 8), then the tensors' bytes, row-major and little-endian, each
// at [begin, end) of the byte buffer that follows the header.
//
// The reader trusts nothing in the file: the header length is checked
// against the file's size (and a 100 MB cap, as the reference reader), every
// entry's dtype, shape and offsets are checked (no overflow, byte count =
// elements x dtype size, entries contiguous from 0 to the end of the file,
// no holes and no overlaps), and any failure is a DataError naming the file
// and the tensor. Nothing is allocated beyond the file's size.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "sslab/export.h"

namespace sslab {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct SafetensorsContents {
  NamedTensors tensors;  // in the order of their offsets
  std::map<std::string, std::string> metadata;
};

// The file's bytes: tensors in the given order (moved to the CPU, made
// contiguous), metadata as "__metadata__". Names must be unique and not
// "__metadata__"; dtypes float64/32/16, bfloat16, int64/32/16/8, uint8, bool.
SSLAB_API std::string safetensors_bytes(const NamedTensors& tensors,
                                        const std::map<std::string, std::string>& metadata = {});
// Writes them to `file` atomically; a failed write is a UserError naming it.
SSLAB_API void save_safetensors(const std::string& file, const NamedTensors& tensors,
                                const std::map<std::string, std::string>& metadata = {});
// Parses safetensors bytes; `name` is the file named in errors.
SSLAB_API SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& name);
// Reads a safetensors file (DataError naming it when it is not one).
SSLAB_API SafetensorsContents load_safetensors(const std::string& file);
// True when the file starts like a safetensors file (a header length that
// fits the file, then '{').
SSLAB_API bool looks_like_safetensors(const std::string& file);

}  // namespace sslab
