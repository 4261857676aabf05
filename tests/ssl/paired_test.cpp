// ssl.paired: parts built from nested tables, equal sizes, one owner per key,
// labels from one part, clear errors naming the recipe location.
#include <gtest/gtest.h>

#include "sslab/host/experiment.h"
#include "test_util.h"

namespace {

using sslab_test::TempDir;
using sslab_test::user_error;

// The ssl plugin as built (the recipes list it too); plugins load once per process.
sslab::PluginHost& paired_host() {
  static sslab::PluginHost h;
  static const bool loaded = (h.load_file(SSLAB_PLUGIN_DIR "/libsslab-ssl.so"), true);
  (void)loaded;
  return h;
}

std::string paired(const std::string& a, const std::string& b, const std::string& extra = "") {
  return "[plugins]\nload = [\"template\", \"ssl\"]\n[data.train]\ntype = \"ssl.paired\"\n" + extra +
         "\n[data.train.parts.first]\ntype = \"template.blobs\"\n" + a +
         "\n[data.train.parts.second]\ntype = \"template.blobs\"\n" + b + "\n[train]\nsteps = 1\n";
}

std::string build_error(const std::string& text) {
  TempDir dir;
  std::string file = dir.write("r.toml", text);
  return user_error([&] { sslab::Experiment exp(sslab::Recipe::load(file), paired_host()); });
}

TEST(Paired, PartsOfDifferentSizesAreRefusedNamingBoth) {
  std::string msg = build_error(paired("size = 10", "size = 12"));
  EXPECT_NE(msg.find("part 'second' has 12 samples but part 'first' has 10"), std::string::npos) << msg;
}

TEST(Paired, TwoPartsProducingOneKeyIsAClearError) {
  TempDir dir;
  sslab::Experiment exp(sslab::Recipe::load(dir.write("r.toml", paired("size = 8", "size = 8"))), paired_host());
  auto data = exp.context().dataset("train");
  EXPECT_EQ(data->size(), 8);
  std::string msg = user_error([&] { data->get(0); });
  EXPECT_NE(msg.find("parts 'first' and 'second' both produce the key 'vector'"), std::string::npos) << msg;
}

TEST(Paired, LimitBelongsToThePairedDatasetAndPartsMustExist) {
  std::string msg = build_error(paired("size = 8\nlimit = 4", "size = 8"));
  EXPECT_NE(msg.find("data.train.parts.first.limit applies to the whole paired dataset"), std::string::npos) << msg;
  msg = build_error("[plugins]\nload = [\"template\", \"ssl\"]\n[data.train]\ntype = \"ssl.paired\"\n[train]\nsteps = 1\n");
  EXPECT_NE(msg.find("give at least two parts"), std::string::npos) << msg;
  msg = build_error(paired("size = 8", "size = 8", "labels_from = \"third\""));
  EXPECT_NE(msg.find("no part named 'third'"), std::string::npos) << msg;
}

TEST(Paired, PartKeysAreValidatedWithTheirLocation) {
  std::string msg = build_error(paired("size = 8\nsizee = 3", "size = 8"));
  EXPECT_NE(msg.find("data.train.parts.first.sizee is not a known key"), std::string::npos) << msg;
}

}  // namespace
