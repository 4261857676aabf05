#include "fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace sslab_fuzz {

namespace {
std::string& temp_path() {
  static std::string path;
  return path;
}
void remove_temp() {
  if (!temp_path().empty()) std::remove(temp_path().c_str());
}
}  // namespace

std::string input_file(const uint8_t* data, size_t size, const char* suffix) {
  std::string& path = temp_path();
  if (path.empty()) {
    path = (std::filesystem::temp_directory_path() / ("sslab-fuzz-" + std::to_string(getpid()) + suffix)).string();
    std::atexit(remove_temp);
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

void check_failed(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
  std::abort();
}

}  // namespace sslab_fuzz
