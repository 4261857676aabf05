// File-system helpers.
//
// remove_tree() exists because std::filesystem::remove_all cannot be used in
// a program linked to PyTorch's pip LibTorch (2.x wheels): libtorch.so
// exports its own copy of remove_all, which the dynamic linker binds ahead of
// libstdc++'s, and that copy jumps to a null address (seen with torch
// 2.11.0+cu130; a backtrace shows std::filesystem::remove_all from
// libtorch.so). Other std::filesystem calls are unaffected.
#pragma once

#include <string>

#include "sslab/export.h"

namespace sslab {

// Deletes `path` and everything below it without following symbolic links.
// A missing path is not an error; returns false (and leaves what it could not
// delete) on any other failure.
SSLAB_API bool remove_tree(const std::string& path);
}  // namespace sslab
