// The plugin host through the real loader: bad plugins are refused with a
// message naming the file, and the template plugin loads and builds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "sslab/components.h"
#include "sslab/plugin.h"
#include "sslab/host/experiment.h"
#include "sslab/host/plugin_host.h"
#include "sslab/host/recipe_schema.h"
#include "test_util.h"

namespace sslab_test {
namespace {

using sslab::ComponentKind;
using sslab::PluginHost;
using sslab::Registries;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string test_plugin(const std::string& name) {
  return std::string(SSLAB_TEST_PLUGIN_DIR) + "/libsslab-" + name + ".so";
}
std::string template_plugin() { return std::string(SSLAB_PLUGIN_DIR) + "/libsslab-template.so"; }

class PluginHostTest : public ::testing::Test {
 protected:
  // Only the build's plugin folder is searched, whatever the caller's environment.
  void SetUp() override { setenv("SSLAB_PLUGIN_PATH", "", 1); }
  std::string refusal(const std::string& file) {
    return user_error([&] { host_.load_file(file); });
  }
  Registries registries_;
  PluginHost host_{registries_};
  TempDir dir_;
};

TEST_F(PluginHostTest, RefusesAnotherApiMajorVersionNamingBothVersions) {
  std::string file = test_plugin("api_major");
  std::string msg = refusal(file);
  EXPECT_THAT(msg, StartsWith(file + ": "));
  EXPECT_THAT(msg, HasSubstr("plugin API version 99.0 is not compatible with this sslab's plugin API version " +
                             sslab::host_api_version()));
  EXPECT_TRUE(host_.loaded().empty());
}

TEST_F(PluginHostTest, RefusesANewerApiMinorVersion) {
  std::string msg = refusal(test_plugin("api_minor"));
  EXPECT_THAT(msg,
              HasSubstr(sslab::str("plugin API version ", SSLAB_API_VERSION_MAJOR, ".", SSLAB_API_VERSION_MINOR + 1,
                                   " is not compatible with this sslab's plugin API version ", SSLAB_API_VERSION_MAJOR,
                                   ".", SSLAB_API_VERSION_MINOR)));
}

// A plugin built for 2.0 loads on a 2.1 host without rebuilding (docs/plugins.md, "API 2.1").
TEST_F(PluginHostTest, LoadsAnOlderApiMinorVersion) {
  EXPECT_EQ(refusal(test_plugin("api_old_minor")), "<no exception>");
  ASSERT_EQ(host_.loaded().size(), 1u);
}

TEST_F(PluginHostTest, RefusesATruncatedDescriptor) {
  EXPECT_THAT(refusal(test_plugin("old_struct")),
              HasSubstr(sslab::str("plugin descriptor is 16 bytes, expected at least ", sizeof(sslab_plugin_info_t))));
}

TEST_F(PluginHostTest, RefusesAnotherLibTorchVersionNamingBothVersions) {
  std::string file = test_plugin("torch_version");
  std::string msg = refusal(file);
  EXPECT_THAT(msg, StartsWith(file + ": "));
  EXPECT_THAT(msg, HasSubstr(std::string("plugin was built against LibTorch 0.4.1 but this sslab uses LibTorch ") +
                             TORCH_VERSION));
}

TEST_F(PluginHostTest, RefusesAFileThatIsNotASharedLibrary) {
  std::string file = dir_.write("libsslab-junk.so", "this is a text file, not a plugin\n");
  std::string msg = refusal(file);
  EXPECT_THAT(msg, StartsWith(file + ": not a loadable plugin: "));
  EXPECT_THAT(msg, HasSubstr("libsslab-junk.so"));  // dlerror() names it again, with the reason
}

TEST_F(PluginHostTest, RefusesASharedLibraryWithoutTheEntrySymbol) {
  std::string file = test_plugin("no_symbol");
  EXPECT_EQ(refusal(file),
            file + ": not an sslab plugin: it does not export sslab_plugin_info() (define it with SSLAB_PLUGIN)");
}

TEST_F(PluginHostTest, AThrowingRegisterCallbackIsRefusedAndRegistersNothing) {
  std::string file = test_plugin("throws");
  EXPECT_EQ(refusal(file), file +
                               ": plugin 'throws' failed to register its components: "
                               "cannot find libfoo.so.3 (deliberate test failure)");
  EXPECT_EQ(registries_.find(ComponentKind::Dataset, "throws.before"), nullptr);
  EXPECT_TRUE(host_.loaded().empty());
}

TEST_F(PluginHostTest, TwoPluginsRegisteringTheSameNameTheSecondIsRefused) {
  host_.load_file(test_plugin("dup_a"));
  std::string msg = refusal(test_plugin("dup_b"));
  EXPECT_EQ(msg, test_plugin("dup_b") +
                     ": plugin 'dup_b' registers dataset 'test.shared', which is already "
                     "registered by plugin 'dup_a' (" +
                     test_plugin("dup_a") + ")");
  EXPECT_NE(registries_.find(ComponentKind::Dataset, "dup_a.own"), nullptr);
  EXPECT_EQ(registries_.find(ComponentKind::Dataset, "dup_b.own"), nullptr);  // staged, never committed
  EXPECT_EQ(registries_.find(ComponentKind::Dataset, "test.shared")->plugin, "dup_a");
  ASSERT_EQ(host_.loaded().size(), 1u);
  EXPECT_EQ(host_.loaded()[0].name, "dup_a");
}

TEST_F(PluginHostTest, APluginCommandIsRegisteredAndRecorded) {
  const sslab::PluginRecord& rec = host_.load_file(test_plugin("command"));
  EXPECT_EQ(rec.commands, std::vector<std::string>{"test-greet"});
  EXPECT_TRUE(rec.components.empty());
  const sslab::CommandEntry* c = registries_.find_command("test-greet");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->plugin, "command");
  EXPECT_EQ(c->file, test_plugin("command"));
  EXPECT_EQ(c->run({"exit", "7"}), 7);
  EXPECT_EQ(user_error([&] { c->run({"fail"}); }), "greeting failed on purpose");  // a UserError across the plugin
}

TEST_F(PluginHostTest, TwoPluginsRegisteringTheSameCommandTheSecondIsRefused) {
  host_.load_file(test_plugin("command"));
  EXPECT_EQ(refusal(test_plugin("command_dup")),
            test_plugin("command_dup") +
                ": plugin 'command_dup' registers command 'test-greet', which is already registered by plugin "
                "'command' (" +
                test_plugin("command") + ")");
  EXPECT_EQ(registries_.find_command("test-greet")->plugin, "command");
}

TEST_F(PluginHostTest, APluginCommandNamedLikeABuiltInIsRefused) {
  std::string file = test_plugin("command_builtin");
  EXPECT_EQ(refusal(file), file + ": plugin 'command_builtin' registers command 'train', which is a built-in sslab "
                                  "command");
  EXPECT_TRUE(registries_.commands.empty());
}

TEST_F(PluginHostTest, APluginRegisteringANameTwiceIsRefused) {
  std::string file = test_plugin("dup_self");
  EXPECT_EQ(refusal(file), file + ": plugin 'dup_self' registers encoder 'test.twice' twice");
  EXPECT_TRUE(registries_.names(ComponentKind::Encoder).empty());
}

TEST_F(PluginHostTest, TwoFilesWithTheSamePluginNameTheSecondIsRefused) {
  host_.load_file(template_plugin());
  std::string copy = (dir_.path() / "libsslab-template.so").string();
  std::filesystem::copy_file(template_plugin(), copy);
  EXPECT_EQ(refusal(copy), copy + ": a plugin named 'template' is already loaded from " + template_plugin());
}

TEST_F(PluginHostTest, LoadingTheSameFileTwiceIsANoOp) {
  const sslab::PluginRecord& first = host_.load_file(template_plugin());
  const sslab::PluginRecord& again = host_.load("template");
  EXPECT_EQ(&first, &again);
  EXPECT_EQ(host_.loaded().size(), 1u);
}

TEST_F(PluginHostTest, UnknownPluginNameListsTheFoldersSearched) {
  std::string msg = user_error([&] { host_.load("nosuch", {dir_.path().string()}); });
  EXPECT_THAT(msg, HasSubstr("plugin 'nosuch' not found: no libsslab-nosuch.so in " + dir_.path().string() + ", "));
  EXPECT_THAT(msg, HasSubstr(PluginHost::default_plugin_dir()));
  EXPECT_THAT(user_error([&] { host_.load("./libsslab-missing.so", {}, "/nowhere"); }),
              HasSubstr("plugin file '/nowhere/./libsslab-missing.so' does not exist"));
}

TEST_F(PluginHostTest, SearchPathIsExtraThenEnvironmentThenTheBuildPluginFolder) {
  EXPECT_EQ(std::filesystem::canonical(PluginHost::default_plugin_dir()), std::filesystem::canonical(SSLAB_PLUGIN_DIR));
  setenv("SSLAB_PLUGIN_PATH", "/env/a::/env/b", 1);
  EXPECT_EQ(PluginHost::search_path({"/extra"}),
            (std::vector<std::string>{"/extra", "/env/a", "/env/b", PluginHost::default_plugin_dir()}));
}

TEST_F(PluginHostTest, PluginsAreFoundByNameThroughTheEnvironment) {
  std::filesystem::copy_file(test_plugin("dup_a"), dir_.path() / "libsslab-renamed.so");
  setenv("SSLAB_PLUGIN_PATH", dir_.path().c_str(), 1);
  EXPECT_EQ(host_.load("renamed").name, "dup_a");  // the descriptor's name, not the file's
}

TEST_F(PluginHostTest, DiscoverReportsRefusedFilesWithReasonsAndLoadsTheRest) {
  dir_.write("libsslab-junk.so", "not a plugin\n");
  std::filesystem::copy_file(test_plugin("no_symbol"), dir_.path() / "libsslab-nosym.so");
  dir_.write("README.txt", "ignored: not named libsslab-*.so\n");
  std::vector<sslab::PluginRecord> records = host_.discover({dir_.path().string()});
  // junk and nosym (sorted by file name), then the build folder's plugins.
  ASSERT_GE(records.size(), 3u);
  EXPECT_EQ(records[0].name, "junk");
  EXPECT_FALSE(records[0].loaded);
  EXPECT_THAT(records[0].refusal, HasSubstr("not a loadable plugin"));
  EXPECT_EQ(records[1].name, "nosym");
  EXPECT_FALSE(records[1].loaded);
  EXPECT_THAT(records[1].refusal, HasSubstr("does not export sslab_plugin_info()"));
  auto tpl = std::find_if(records.begin() + 2, records.end(), [](const auto& r) { return r.name == "template"; });
  ASSERT_NE(tpl, records.end());
  EXPECT_TRUE(tpl->loaded);
  EXPECT_EQ(tpl->refusal, "");
  EXPECT_EQ(tpl->file, std::filesystem::canonical(template_plugin()).string());
}

// One component of each kind, and a second objective: the two-view example.
TEST_F(PluginHostTest, TheTemplatePluginRegistersOneComponentOfEachKind) {
  const sslab::PluginRecord& rec = host_.load("template");
  EXPECT_TRUE(rec.loaded);
  EXPECT_EQ(rec.version, "0.1.0");
  EXPECT_EQ(std::filesystem::path(rec.file), std::filesystem::canonical(template_plugin()));
  for (ComponentKind kind : sslab::all_kinds()) {
    std::vector<std::string> names = registries_.names(kind);
    ASSERT_EQ(names.size(), kind == ComponentKind::Objective ? 2u : 1u) << sslab::kind_name(kind);
    for (const auto& name : names) {
      EXPECT_THAT(name, StartsWith("template."));
      const sslab::ComponentInfo* info = registries_.find(kind, name);
      EXPECT_EQ(info->plugin, "template");
      EXPECT_EQ(info->file, rec.file);
      EXPECT_FALSE(info->doc.empty());
    }
  }
  EXPECT_EQ(registries_.names(ComponentKind::Objective),
            (std::vector<std::string>{"template.cosine_views", "template.reconstruct"}));
  EXPECT_EQ(rec.components.size(), sslab::all_kinds().size() + 1);
}

// Loads the template through a recipe and builds every component with the
// registries' factories, as the trainer does.
TEST_F(PluginHostTest, TheTemplateBuildsItsComponentsFromARecipe) {
  std::string file = dir_.write("template.toml", R"(
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = 64
dim = 12
classes = 3
[data.test]
type = "template.blobs"
size = 32
dim = 12
classes = 3
[[transforms.vector]]
type = "template.noise"
std = 0.2
[tokenizers.bytes]
type = "template.bytes"
[encoders.main]
type = "template.mlp"
in_dim = 12
dim = 6
[heads.proj]
type = "template.linear"
in_dim = 6
out_dim = 4
[[objectives]]
type = "template.reconstruct"
input_dim = 12
[[evaluators]]
type = "template.embedding_norm"
[train]
steps = 5
)");
  sslab::Recipe recipe = sslab::Recipe::load(file);
  sslab::load_recipe_plugins(recipe, host_);
  ASSERT_EQ(host_.loaded().size(), 1u);
  sslab::validate_recipe(recipe, registries_);

  sslab::BuildContext ctx(recipe, registries_);
  for (const std::string split : {"train", "test"}) {
    sslab::RecipeNode node = recipe.at("data").child(split);
    sslab::Config cfg = sslab::component_config(node, ComponentKind::Dataset, registries_);
    sslab::HostAccess::datasets(ctx)[split] = registries_.datasets.at(node.required_string("type")).factory(cfg, ctx);
  }
  EXPECT_EQ(ctx.dataset("train")->size(), 64);
  EXPECT_EQ(ctx.dataset("train")->num_classes(), 3);
  sslab::Sample sample = ctx.dataset("train")->get(4);
  EXPECT_EQ(sample.at("vector").sizes(), (c10::IntArrayRef{12}));
  EXPECT_EQ(sample.at("label").item<int64_t>(), 4 % 3);
  EXPECT_TRUE(torch::equal(sample.at("vector"), ctx.dataset("train")->get(4).at("vector")));  // deterministic

  sslab::RecipeNode tnode = recipe.at("transforms").table_array("vector")[0];
  auto noise = registries_.transforms.at("template.noise")
                   .factory(sslab::component_config(tnode, ComponentKind::Transform, registries_), ctx);
  sslab::Rng rng(1);
  torch::Tensor noisy = noise->apply(sample.at("vector"), rng);
  EXPECT_EQ(noisy.sizes(), sample.at("vector").sizes());
  EXPECT_FALSE(torch::equal(noisy, sample.at("vector")));

  sslab::RecipeNode knode = recipe.at("tokenizers.bytes");
  auto tok = registries_.tokenizers.at("template.bytes")
                 .factory(sslab::component_config(knode, ComponentKind::Tokenizer, registries_), ctx);
  EXPECT_EQ(tok->decode(tok->encode("hello")), "hello");
  EXPECT_EQ(tok->special_id("[MASK]"), 257);

  sslab::RecipeNode enode = recipe.at("encoders.main");
  sslab::HostAccess::encoders(ctx)["main"] = registries_.encoders.at("template.mlp")
                             .factory(sslab::component_config(enode, ComponentKind::Encoder, registries_), ctx);
  sslab::RecipeNode hnode = recipe.at("heads.proj");
  sslab::HostAccess::heads(ctx)["proj"] = registries_.heads.at("template.linear")
                          .factory(sslab::component_config(hnode, ComponentKind::Head, registries_), ctx);

  sslab::Batch batch;
  std::vector<torch::Tensor> xs;
  for (int64_t i = 0; i < 8; ++i) xs.push_back(ctx.dataset("train")->get(i).at("vector"));
  batch.tensors["vector"] = torch::stack(xs);
  batch.size = 8;
  torch::Tensor z = ctx.encoder("main")->embed(batch);
  EXPECT_EQ(z.sizes(), (c10::IntArrayRef{8, 6}));
  EXPECT_EQ(ctx.head("proj")->forward(z).sizes(), (c10::IntArrayRef{8, 4}));

  sslab::RecipeNode onode = recipe.root().table_array("objectives")[0];
  auto objective = registries_.objectives.at("template.reconstruct")
                       .factory(sslab::component_config(onode, ComponentKind::Objective, registries_), ctx);
  sslab::ObjectiveOutput out = objective->compute(batch);
  EXPECT_EQ(out.loss.dim(), 0);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  EXPECT_DOUBLE_EQ(out.metrics.at("mse"), out.loss.item<double>());
  out.loss.backward();
  ASSERT_FALSE(ctx.encoder("main")->parameters().empty());
  EXPECT_TRUE(ctx.encoder("main")->parameters()[0].grad().defined());

  sslab::RecipeNode vnode = recipe.root().table_array("evaluators")[0];
  auto evaluator = registries_.evaluators.at("template.embedding_norm")
                       .factory(sslab::component_config(vnode, ComponentKind::Evaluator, registries_), ctx);
  sslab::EvalResults results = evaluator->evaluate(ctx);
  EXPECT_GT(results.at("template.embedding_norm").at("mean"), 0.0);
}

TEST_F(PluginHostTest, ABadPluginInARecipeNamesTheRecipeKey) {
  std::string file = dir_.write("r.toml", "[plugins]\nload = [\"" + test_plugin("torch_version") + "\"]\n");
  std::string msg = user_error([&] { sslab::load_recipe_plugins(sslab::Recipe::load(file), host_); });
  EXPECT_THAT(msg, StartsWith(file + ":2:8: plugins.load: " + test_plugin("torch_version") + ": "));
  EXPECT_THAT(msg, HasSubstr("plugin was built against LibTorch 0.4.1"));
  file = dir_.write("r2.toml", "[plugins]\nload = [\"templat\"]\n");
  EXPECT_THAT(user_error([&] { sslab::load_recipe_plugins(sslab::Recipe::load(file), host_); }),
              HasSubstr(file + ":2:8: plugins.load: plugin 'templat' not found: no libsslab-templat.so in "));
}

TEST_F(PluginHostTest, RecipePluginPathsAreRelativeToTheRecipe) {
  std::filesystem::create_directories(dir_.path() / "plugins");
  std::filesystem::copy_file(test_plugin("dup_a"), dir_.path() / "plugins" / "libsslab-local.so");
  std::string file = dir_.write("exp/r.toml",
                                "[plugins]\nload = [\"local\", \"../plugins/libsslab-local.so\"]\n"
                                "path = [\"../plugins\"]\n");
  sslab::load_recipe_plugins(sslab::Recipe::load(file), host_);
  ASSERT_EQ(host_.loaded().size(), 1u);  // the same file, by name and by path
  EXPECT_EQ(host_.loaded()[0].file, (dir_.path() / "plugins" / "libsslab-local.so").string());
}

}  // namespace
}  // namespace sslab_test
