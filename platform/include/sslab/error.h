// Errors with context.
//
// sslab distinguishes a user's error (bad recipe, argument, plugin or data
// file: exit code 2) from an internal failure (a bug: exit code 1). Both carry
// one clear line; the CLI prints it on stderr.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "sslab/export.h"

namespace sslab {

// A problem the user can fix: bad recipe, argument, plugin or data file.
class SSLAB_API UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

// A data file that cannot be read (corrupt, truncated). Loaders may skip it
// by policy; otherwise it is a user error.
class SSLAB_API DataError : public UserError {
 public:
  DataError(std::string path, const std::string& what)
      : UserError(path + ": " + what), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A broken invariant inside sslab or a plugin: a bug.
class SSLAB_API InternalError : public std::runtime_error {
 public:
  explicit InternalError(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

// Joins any streamable values into one string.
template <typename... Args>
std::string str(const Args&... args) {
  return detail::cat(args...);
}

}  // namespace sslab

// Fails with a UserError carrying the message when cond is false.
#define SSLAB_CHECK(cond, ...)                                  \
  do {                                                          \
    if (!(cond)) throw ::sslab::UserError(::sslab::str(__VA_ARGS__)); \
  } while (0)

// Fails with an InternalError naming the source location when cond is false.
#define SSLAB_ASSERT(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond))                                                                  \
      throw ::sslab::InternalError(::sslab::str(__FILE__, ":", __LINE__, ": ",    \
                                                "internal check '", #cond,        \
                                                "' failed. ", ##__VA_ARGS__));    \
  } while (0)
