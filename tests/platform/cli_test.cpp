// The real sslab command: exit codes, one-line errors, plugin listing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"

namespace sslab_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string smoke_recipe() { return std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/template.toml"; }
std::string test_plugin(const std::string& name) {
  return std::string(SSLAB_TEST_PLUGIN_DIR) + "/libsslab-" + name + ".so";
}
// Runs sslab with only the build's plugin folder on the search path.
RunResult sslab(const std::string& args, const std::string& plugin_path = "") {
  return run("SSLAB_PLUGIN_PATH='" + plugin_path + "' " + sslab_cli() + " " + args);
}
size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(Cli, CheckAcceptsTheSmokeRecipe) {
  RunResult r = sslab("check '" + smoke_recipe() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr(smoke_recipe() + ": ok (1 plugin(s) loaded)"));
}

TEST(Cli, CheckPrintsTheResolvedRecipeWithOverrides) {
  RunResult r = sslab("check '" + smoke_recipe() + "' --set train.batch_size=8 --set train.seed=3 --print");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch_size = 8"));
  EXPECT_THAT(r.out, HasSubstr("seed = 3"));
}

TEST(Cli, BadRecipeExitsWith2AndOneLineOnStderr) {
  TempDir dir;
  std::string f = dir.write("bad.toml", "[train]\nsteps = 10\nbatch_size = -4\n");
  RunResult r = sslab("check '" + f + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "sslab check: error: " + f + ":3:14: train.batch_size must be >= 1, got -4\n");
}

TEST(Cli, BadOverrideExitsWith2NamingTheOverride) {
  RunResult r = sslab("check '" + smoke_recipe() + "' --set train.batch_size=0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_THAT(r.err, HasSubstr("--set train.batch_size=0: train.batch_size must be >= 1, got 0"));
}

TEST(Cli, UnknownComponentExitsWith2WithASuggestion) {
  RunResult r = sslab("check '" + smoke_recipe() + "' --set encoders.main.type=template.mpl");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_THAT(r.err, HasSubstr("encoders.main.type: unknown encoder 'template.mpl'; did you mean 'template.mlp'?"));
}

TEST(Cli, SyntaxErrorAndMissingFileExitWith2) {
  TempDir dir;
  std::string f = dir.write("broken.toml", "[train\nsteps = 1\n");
  RunResult r = sslab("check '" + f + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_THAT(r.err, HasSubstr(f + ":1:"));
  EXPECT_THAT(r.err, HasSubstr("TOML syntax error"));
  r = sslab("check '" + (dir / "absent.toml") + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "sslab check: error: cannot read recipe '" + (dir / "absent.toml") + "': no such file\n");
}

TEST(Cli, BadArgumentsExitWith2) {
  RunResult r = sslab("check");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("a recipe file is required"));
  r = sslab("check '" + smoke_recipe() + "' --bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bogus"));
  r = sslab("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("sslab: unknown command 'frobnicate'\n"));
  r = sslab("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("usage: sslab <command>"));
}

TEST(Cli, ARecipePluginThatIsRefusedExitsWith2) {
  TempDir dir;
  std::string f = dir.write("r.toml", "[plugins]\nload = [\"" + test_plugin("api_major") + "\"]\n");
  RunResult r = sslab("check '" + f + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_THAT(r.err, HasSubstr("plugin API version 99.0 is not compatible"));
}

TEST(Cli, PluginsListsTheTemplateAndItsComponents) {
  RunResult r = sslab("plugins");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("template 0.1.0  "));
  for (const char* name : {"template.blobs", "template.noise", "template.bytes", "template.mlp", "template.linear",
                           "template.reconstruct", "template.cosine_views", "template.embedding_norm"})
    EXPECT_THAT(r.out, HasSubstr(name));
  EXPECT_THAT(r.out, HasSubstr("Gaussian blobs with class labels"));  // one-line docs
  EXPECT_THAT(r.out, Not(HasSubstr("REFUSED")));
}

class CliRefused : public ::testing::Test {
 protected:
  void SetUp() override {
    junk_ = dir_.write("libsslab-junk.so", "this is a text file\n");
    nosym_ = dir_ / "libsslab-nosym.so";
    std::filesystem::copy_file(test_plugin("no_symbol"), nosym_);
  }
  TempDir dir_;
  std::string junk_, nosym_;
};

TEST_F(CliRefused, PluginsNamesRefusedFilesWithReasonsAndExits0) {
  RunResult r = sslab("plugins", dir_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("junk  REFUSED  " + junk_ + "\n    " + junk_ + ": not a loadable plugin: "));
  EXPECT_THAT(r.out, HasSubstr("nosym  REFUSED  " + nosym_ + "\n    " + nosym_ +
                               ": not an sslab plugin: it does not export sslab_plugin_info()"));
  EXPECT_THAT(r.out, HasSubstr("template 0.1.0"));  // still loaded from the build's plugin folder
  EXPECT_THAT(r.out, HasSubstr("template.blobs"));
}

TEST_F(CliRefused, PluginsJsonNamesRefusedFiles) {
  RunResult r = sslab("plugins --json", dir_.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"api_version\": "));
  EXPECT_THAT(r.out, HasSubstr("{\"name\": \"junk\", \"file\": \"" + junk_ + "\", \"loaded\": false, \"refused\": \""));
  EXPECT_THAT(r.out,
              HasSubstr("{\"name\": \"nosym\", \"file\": \"" + nosym_ + "\", \"loaded\": false, \"refused\": \""));
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"template\""));
  EXPECT_THAT(r.out, HasSubstr("{\"kind\": \"dataset\", \"name\": \"template.blobs\", \"doc\": "));
}

}  // namespace
}  // namespace sslab_test
