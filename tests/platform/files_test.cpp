// sslab::remove_tree: the std::filesystem::remove_all replacement.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sslab/files.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;

TEST(Files, RemoveTreeDeletesNestedFoldersButNotWhatALinkPointsTo) {
  sslab_test::TempDir dir;
  dir.write("outside/keep.txt", "keep");
  dir.write("tree/a/b/c.txt", "x");
  dir.write("tree/d.txt", "y");
  fs::create_directory_symlink(dir / "outside", dir / "tree/a/link");
  EXPECT_TRUE(sslab::remove_tree(dir / "tree"));
  EXPECT_FALSE(fs::exists(dir / "tree"));
  EXPECT_TRUE(fs::exists(dir / "outside/keep.txt")) << "remove_tree followed a symbolic link";
}

TEST(Files, RemoveTreeOfAMissingPathOrOneFileSucceeds) {
  sslab_test::TempDir dir;
  EXPECT_TRUE(sslab::remove_tree(dir / "absent"));
  std::string f = dir.write("one.txt", "z");
  EXPECT_TRUE(sslab::remove_tree(f));
  EXPECT_FALSE(fs::exists(f));
}

}  // namespace
