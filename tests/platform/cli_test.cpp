// The real sslab command: exit codes, one-line errors, plugin listing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <fstream>

#include "test_util.h"

namespace sslab_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string smoke_recipe() { return std::string(SSLAB_SOURCE_DIR) + "/recipes/smoke/template.toml"; }
std::string cli_test_plugin(const std::string& name) {
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

// Whatever `sslab train` refuses before building, `sslab check` refuses
// too; a base file (--base) need not be trainable alone.
TEST(Cli, CheckRefusesWhatTrainWouldRefuse) {
  TempDir dir;
  // The smoke recipe without its objective: written out in full, minus [[objectives]].
  std::string text = read_text(smoke_recipe());
  size_t at = text.find("[[objectives]]");
  ASSERT_NE(at, std::string::npos);
  size_t end = text.find("\n[", at + 1);
  std::string stripped = text.substr(0, at) + (end == std::string::npos ? "" : text.substr(end + 1));
  std::string f = dir.write("stripped.toml", stripped);
  RunResult r = sslab("check '" + f + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.err, HasSubstr(f + ": the recipe has no [[objectives]] to train"));
  EXPECT_EQ(sslab("check --base '" + f + "'").exit_code, 0);
  r = sslab("check '" + smoke_recipe() + "' --set train.batch_size=30 --set train.accumulate=4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("train.accumulate (4) must divide train.batch_size (30)"));
  r = sslab("check '" + smoke_recipe() + "' --set 'train.precision=\"bf16\"'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bf16 autocast needs train.device = \"cuda\""));
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
  EXPECT_THAT(r.err, StartsWith("sslab: unknown command 'frobnicate'; known: check, compare, doc, embed, eval, export, plugins, report, "));
  r = sslab("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("usage: sslab <command>"));
}

TEST(Cli, ARecipePluginThatIsRefusedExitsWith2) {
  TempDir dir;
  std::string f = dir.write("r.toml", "[plugins]\nload = [\"" + cli_test_plugin("api_major") + "\"]\n");
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
    std::filesystem::copy_file(cli_test_plugin("no_symbol"), nosym_);
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
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j.at("api_version").is_string());
  EXPECT_TRUE(j.at("torch_version").is_string());
  std::map<std::string, nlohmann::json> plugins;
  for (const auto& p : j.at("plugins")) plugins[p.at("name").get<std::string>()] = p;
  ASSERT_EQ(plugins.count("junk"), 1u) << r.out;
  EXPECT_EQ(plugins["junk"].at("file").get<std::string>(), junk_);
  EXPECT_EQ(plugins["junk"].at("loaded").get<bool>(), false);
  EXPECT_THAT(plugins["junk"].at("refused").get<std::string>(), StartsWith(junk_ + ": not a loadable plugin: "));
  ASSERT_EQ(plugins.count("nosym"), 1u) << r.out;
  EXPECT_EQ(plugins["nosym"].at("file").get<std::string>(), nosym_);
  EXPECT_EQ(plugins["nosym"].at("refused").get<std::string>(),
            nosym_ + ": not an sslab plugin: it does not export sslab_plugin_info() (define it with SSLAB_PLUGIN)");
  ASSERT_EQ(plugins.count("template"), 1u) << r.out;
  EXPECT_EQ(plugins["template"].at("loaded").get<bool>(), true);
  EXPECT_EQ(plugins["template"].at("version").get<std::string>(), "0.1.0");
  nlohmann::json blobs;
  for (const auto& c : plugins["template"].at("components"))
    if (c.at("name") == "template.blobs") blobs = c;
  ASSERT_FALSE(blobs.is_null()) << "template.blobs missing from " << r.out;
  EXPECT_EQ(blobs.at("kind").get<std::string>(), "dataset");
  EXPECT_THAT(blobs.at("doc").get<std::string>(), HasSubstr("Gaussian blobs with class labels"));
}

// A folder holding copies of some test plugins, to put on SSLAB_PLUGIN_PATH.
class CliCommands : public ::testing::Test {
 protected:
  std::string with(std::initializer_list<const char*> plugins) {
    for (const char* p : plugins)
      std::filesystem::copy_file(cli_test_plugin(p), dir_ / ("libsslab-" + std::string(p) + ".so"));
    return dir_.str();
  }
  std::string file(const std::string& plugin) const { return dir_ / ("libsslab-" + plugin + ".so"); }
  TempDir dir_;
};

TEST_F(CliCommands, APluginCommandRunsWithItsArgumentsAndExitCode) {
  std::string path = with({"command"});
  RunResult r = sslab("test-greet a 'b c'", path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello a b c\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(sslab("test-greet exit 3", path).exit_code, 3);
  r = sslab("test-greet fail", path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "sslab test-greet: error: greeting failed on purpose\n");
}

TEST_F(CliCommands, HelpListsPluginCommandsWithTheirPlugin) {
  RunResult r = sslab("--help", with({"command"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("usage: sslab <command>"));
  EXPECT_THAT(r.out, HasSubstr("\nplugin commands:\n"));
  EXPECT_THAT(r.out, HasSubstr("  test-greet" + std::string(32, ' ') + "print a greeting (plugin command)\n"));
}

TEST_F(CliCommands, HelpStillListsCommandsWhenAPluginIsRefused) {
  RunResult r = sslab("--help", with({"command", "command_dup"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("plugin commands (1 plugin(s) refused: see 'sslab plugins'):\n"));
  EXPECT_THAT(r.out, HasSubstr("print a greeting (plugin command)\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("another greeting")));
}

TEST_F(CliCommands, ADuplicateCommandIsRefusedNamingBothPlugins) {
  std::string path = with({"command", "command_dup"});
  RunResult r = sslab("plugins", path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("command_dup  REFUSED  " + file("command_dup") + "\n    " + file("command_dup") +
                               ": plugin 'command_dup' registers command 'test-greet', which is already registered "
                               "by plugin 'command' (" +
                               file("command") + ")\n"));
  r = sslab("test-greet", path);  // the first plugin's command still runs
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");
}

TEST_F(CliCommands, PluginsListsCommands) {
  std::string path = with({"command"});
  RunResult r = sslab("plugins", path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("command 0.0.1  " + file("command") + "\n    registers the command test-greet\n"
                               "    command    sslab test-greet            print a greeting\n"));
  r = sslab("plugins --json", path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  nlohmann::json plugin;
  for (const auto& p : j.at("plugins"))
    if (p.at("name") == "command") plugin = p;
  ASSERT_FALSE(plugin.is_null()) << r.out;
  EXPECT_TRUE(plugin.at("components").empty());
  EXPECT_EQ(plugin.at("commands"), nlohmann::json::parse(R"([{"name": "test-greet", "doc": "print a greeting"}])"));
}

TEST_F(CliCommands, AnUnknownCommandSuggestsTheNearestBuiltInOrPluginCommand) {
  std::string path = with({"command"});
  RunResult r = sslab("test-gret", path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("sslab: unknown command 'test-gret'; did you mean 'test-greet'? known: check, compare, doc, "
                                "embed, eval, export, plugins, report, "));
  EXPECT_THAT(r.err, HasSubstr("test-greet"));
  EXPECT_THAT(r.err, HasSubstr("\nrun 'sslab --help' for the commands\n"));
  r = sslab("trian", path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("sslab: unknown command 'trian'; did you mean 'train'?"));
}

TEST_F(CliCommands, APluginCannotTakeABuiltInCommand) {
  std::string path = with({"command_builtin"});
  RunResult r = sslab("plugins", path);
  EXPECT_THAT(r.out, HasSubstr(file("command_builtin") +
                               ": plugin 'command_builtin' registers command 'train', which is a built-in sslab "
                               "command\n"));
  r = sslab("train --help", path);  // still the built-in
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--resume"));
}

// OpenMP threads wait passively unless the environment says otherwise: the
// runtime reads OMP_WAIT_POLICY when it loads, before main (it prints what it
// read under OMP_DISPLAY_ENV).
TEST(Cli, OpenMpWaitsPassivelyByDefault) {
  auto r = run("env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=true " + sslab_cli() + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("OMP_WAIT_POLICY = 'PASSIVE'"));
  r = run("env OMP_WAIT_POLICY=ACTIVE OMP_DISPLAY_ENV=true " + sslab_cli() + " --version");
  EXPECT_THAT(r.err, HasSubstr("OMP_WAIT_POLICY = 'ACTIVE'"));
}

// sslab doc: what a component's schema declares, with no other change:
// every key with its type, default, range or choices, and an example table.
TEST(Doc, ShowsEveryDeclaredKeyWithItsDefault) {
  std::string path = std::string(" --path ") + SSLAB_TEST_PLUGIN_DIR;
  auto r = run(sslab_cli() + " doc doc_keys.data --json" + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("kind"), "dataset");
  EXPECT_EQ(j.at("plugin"), "doc_keys");
  std::map<std::string, nlohmann::json> keys;
  for (const auto& k : j.at("keys")) keys[k.at("name")] = k;
  ASSERT_EQ(keys.size(), 7u) << r.out;  // five declared, limit and on_error for every dataset
  EXPECT_EQ(keys["size"].at("default"), "16");
  EXPECT_EQ(keys["size"].at("min"), 1.0);
  EXPECT_EQ(keys["rate"].at("default"), "0.5");
  EXPECT_EQ(keys["rate"].at("max"), 1.0);
  EXPECT_EQ(keys["mode"].at("choices"), (std::vector<std::string>{"fast", "slow"}));
  EXPECT_TRUE(keys["files"].at("required").get<bool>());
  EXPECT_TRUE(keys["files"].at("default").is_null());
  EXPECT_EQ(keys["shuffle"].at("default"), "true");
  EXPECT_TRUE(keys["on_error"].at("common").get<bool>());
  EXPECT_THAT(j.at("example").get<std::string>(),
              HasSubstr("[data.train]\ntype = \"doc_keys.data\"\nsize = 16\nrate = 0.5\nmode = \"fast\"\n"
                        "# files = <array of strings>  # required\nshuffle = true\n"));
  r = run(sslab_cli() + " doc doc_keys.data" + path);
  EXPECT_THAT(r.out, HasSubstr("doc_keys.data (dataset, plugin doc_keys: "));
  EXPECT_THAT(r.out, HasSubstr("[0, 1]"));
  EXPECT_THAT(r.out, HasSubstr("(every dataset) "));
}

TEST(Doc, CoversEverySectionAndEveryKind) {
  auto r = run(sslab_cli() + " doc --all --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, int> kinds;
  for (const auto& t : nlohmann::json::parse(r.out)) {
    ++kinds[t.at("kind")];
    for (const auto& k : t.at("keys"))
      EXPECT_TRUE(!k.at("default").is_null() || k.at("required").get<bool>() || k.contains("optional") ||
                  k.at("type") == "table" || k.at("type") == "array of tables")
          << t.at("name") << "." << k.at("name");
  }
  for (const char* kind : {"section", "dataset", "transform", "tokenizer", "encoder", "head", "objective", "evaluator"})
    EXPECT_GT(kinds[kind], 0) << kind;
  auto t = run(sslab_cli() + " doc train");
  EXPECT_THAT(t.out, HasSubstr("batch_size"));
  EXPECT_THAT(t.out, HasSubstr("[train]\n"));
  auto bad = run(sslab_cli() + " doc vision.vitt");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("no section or component named 'vision.vitt'; did you mean 'vision.vit'?"));
}

// check --print --defaults: every default the run will use, marked, in TOML
// that reads back to the same recipe.
TEST(Cli, PrintWithDefaultsReadsBackToTheSameRecipe) {
  TempDir dir;
  auto r = run(sslab_cli() + " check " + smoke_recipe() + " --print --defaults");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nmin_lr = 0.0  # default\n"));           // [train], not in the recipe
  EXPECT_THAT(r.out, HasSubstr("\nkeep_last = 2  # default\n"));          // [checkpoint], absent from the recipe
  EXPECT_THAT(r.out, HasSubstr("\non_error = 'fail'  # default\n"));   // a dataset's platform key
  EXPECT_THAT(r.out, HasSubstr("\nbatch_size = 32\n"));                   // set by the recipe: not marked
  // It checks, and printing it again gives the same values, now all set explicitly.
  std::string copy = dir.write("resolved.toml", r.out);
  auto again = run(sslab_cli() + " check " + copy + " --print --defaults");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto values = [](const std::string& text) {
    std::string out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line[0] == '#') continue;
      size_t c = line.find("  # default");
      out += (c == std::string::npos ? line : line.substr(0, c)) + "\n";
    }
    return out;
  };
  EXPECT_EQ(values(again.out), values(r.out));
  EXPECT_THAT(again.out, Not(HasSubstr("# default\n")));
}

}  // namespace
}  // namespace sslab_test
