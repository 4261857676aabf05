// UTF-8 validation, shared by the recipe overrides and the text readers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sslab/export.h"

namespace sslab {

// Byte offset of the first byte sequence in data[0, n) that is not valid
// UTF-8 (overlong forms, surrogates and code points past U+10FFFF are
// invalid), or -1 when all of it is valid.
SSLAB_API int64_t find_invalid_utf8(const char* data, size_t n);

}  // namespace sslab
