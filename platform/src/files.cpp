#include "sslab/files.h"
#include "sslab/host/memory.h"

#include <dlfcn.h>
#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

namespace sslab {

namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  return std::remove(path) == 0 ? 0 : -1;  // remove() unlinks files and rmdirs empty folders
}

}  // namespace

bool remove_tree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  // FTW_DEPTH: children before their folder; FTW_PHYS: a link is removed, not followed.
  return nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

bool release_free_memory() {
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  static Mallctl mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (!mallctl) return false;
  // 4096 = MALLCTL_ARENAS_ALL: every arena's dirty and muzzy pages.
  return mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0;
}

}  // namespace sslab
