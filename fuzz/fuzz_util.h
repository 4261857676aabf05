// Shared by the fuzz targets (docs/fuzzing.md).
//
// A target feeds the input to one reader and lets only sslab's documented
// errors (sslab::UserError, sslab::DataError) pass as a clean rejection.
// Anything else is a finding: a crash or sanitizer report, another exception
// escaping (libFuzzer reports it as a deadly signal), a leak, an allocation
// over -malloc_limit_mb, a timeout, or a broken property (SSLAB_FUZZ_CHECK).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <sslab/error.h>

namespace sslab_fuzz {

// Writes the input to this process's temporary file `<tmp>/sslab-fuzz-<pid><suffix>`
// (removed at exit) and returns its path: for readers that take a path.
std::string input_file(const uint8_t* data, size_t size, const char* suffix);

// Prints "fuzz check failed: <what>" and aborts: a finding.
[[noreturn]] void check_failed(const char* file, int line, const char* what);

}  // namespace sslab_fuzz

// A property every accepted input must have; its failure is a finding.
#define SSLAB_FUZZ_CHECK(cond)                                          \
  do {                                                                  \
    if (!(cond)) ::sslab_fuzz::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

// Runs the statements; sslab::UserError (DataError included) is a clean rejection.
#define SSLAB_FUZZ_REJECTS_CLEANLY(...) \
  try {                                 \
    __VA_ARGS__;                        \
  } catch (const ::sslab::UserError&) { \
  }
