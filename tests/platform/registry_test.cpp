// Registries: registration staging, duplicates, unknown names, component
// tables validated against the schema their registry entry declares.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sslab/recipe.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/registry.h"
#include "test_util.h"

namespace sslab_test {
namespace {

using sslab::ComponentKind;
using sslab::Recipe;
using sslab::Registrar;
using sslab::Registries;
using ::testing::HasSubstr;

template <typename T>
sslab::Factory<T> null_factory() {
  return [](const sslab::Config&, sslab::BuildContext&) -> std::shared_ptr<T> { return nullptr; };
}

// Registries holding a "toy" plugin's dataset, encoder and objective.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Registrar r("toy", "/plugins/libsslab-toy.so");
    sslab::Schema blobs;
    blobs.integer("size", int64_t{100}, "samples").min(1);
    r.dataset("toy.blobs", "toy blobs", blobs, null_factory<sslab::Dataset>());
    sslab::Schema mlp;
    mlp.integer("dim", int64_t{8}, "width").min(1);
    r.encoder("toy.mlp", "toy encoder", mlp, null_factory<sslab::Encoder>());
    r.encoder("toy.cnn", "toy encoder", sslab::Schema{}, null_factory<sslab::Encoder>());
    r.objective("toy.loss", "toy loss", sslab::Schema{}, null_factory<sslab::Objective>());
    r.commit(registries_);
  }
  std::string check(const std::string& text) {
    std::string f = dir_.write("recipe.toml", text);
    std::string msg = user_error([&] { sslab::validate_recipe(Recipe::load(f), registries_); });
    return msg == "<no exception>" ? "" : msg;
  }
  std::string file() const { return dir_ / "recipe.toml"; }
  TempDir dir_;
  Registries registries_;
};

TEST_F(RegistryTest, RegisteredNamesCarryDocPluginAndFile) {
  const sslab::ComponentInfo* info = registries_.find(ComponentKind::Encoder, "toy.mlp");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->doc, "toy encoder");
  EXPECT_EQ(info->plugin, "toy");
  EXPECT_EQ(info->file, "/plugins/libsslab-toy.so");
  EXPECT_EQ(registries_.names(ComponentKind::Encoder), (std::vector<std::string>{"toy.cnn", "toy.mlp"}));
  EXPECT_EQ(registries_.find(ComponentKind::Dataset, "toy.mlp"), nullptr);  // registries are per kind
}

TEST_F(RegistryTest, UnknownNameListsKnownNamesAndSuggestsTheNearest) {
  std::string msg = user_error([&] { registries_.info(ComponentKind::Encoder, "toy.mpl"); });
  EXPECT_EQ(msg, "unknown encoder 'toy.mpl'; did you mean 'toy.mlp'? known: toy.cnn, toy.mlp");
  msg = user_error([&] { registries_.encoders.at("toy.cnnn", "r.toml:3:8: encoders.main.type"); });
  EXPECT_EQ(msg,
            "r.toml:3:8: encoders.main.type: unknown encoder 'toy.cnnn'; did you mean 'toy.cnn'? "
            "known: toy.cnn, toy.mlp");
}

TEST_F(RegistryTest, UnknownNameInAnEmptyRegistryPointsAtPluginsLoad) {
  EXPECT_EQ(user_error([&] { registries_.info(ComponentKind::Tokenizer, "text.bpe"); }),
            "unknown tokenizer 'text.bpe'; none are known (component names start with their plugin's name: add "
            "\"text\" to [plugins] load)");
  EXPECT_EQ(user_error([&] { registries_.info(ComponentKind::Tokenizer, "bpe"); }),
            "unknown tokenizer 'bpe'; none are known (is the plugin that provides it listed in [plugins] load?)");
}

TEST_F(RegistryTest, UnknownNameOfAPluginWithoutComponentsSaysWhichPluginToLoad) {
  std::string msg = user_error([&] { registries_.info(ComponentKind::Encoder, "ssl.mlp"); });
  EXPECT_THAT(msg, HasSubstr("unknown encoder 'ssl.mlp'; "));
  EXPECT_THAT(msg, HasSubstr("(component names start with their plugin's name: add \"ssl\" to [plugins] load)"));
  // A plugin that has components of the kind is loaded: no hint.
  msg = user_error([&] { registries_.info(ComponentKind::Encoder, "toy.mpl"); });
  EXPECT_EQ(msg.find("[plugins] load"), std::string::npos) << msg;
}

TEST_F(RegistryTest, UnknownComponentInARecipeNamesItsTypeKey) {
  std::string msg = check("[encoders.main]\ntype = \"toy.mpl\"\n");
  EXPECT_THAT(msg, HasSubstr(file() + ":2:8: encoders.main.type: unknown encoder 'toy.mpl'; did you mean 'toy.mlp'?"));
}

TEST_F(RegistryTest, ComponentTablesAreValidatedAgainstTheirSchema) {
  EXPECT_EQ(check("[data.train]\ntype = \"toy.blobs\"\nsize = 10\nlimit = 5\n[encoders.main]\ntype = \"toy.mlp\"\n"
                  "input = \"vector\"\n[[objectives]]\ntype = \"toy.loss\"\nweight = 0.5\n[train]\nsteps = 3\n"),
            "");
  EXPECT_THAT(check("[data.train]\ntype = \"toy.blobs\"\nsize = 0\n"),
              HasSubstr(file() + ":3:8: data.train.size must be >= 1, got 0"));
  std::string msg = check("[encoders.main]\ntype = \"toy.mlp\"\ndimm = 3\n");
  EXPECT_THAT(msg, HasSubstr(file() + ":3:1: encoders.main.dimm is not a known key; did you mean 'dim'?"));
  EXPECT_THAT(check("[[objectives]]\ntype = \"toy.loss\"\nweight = -1\n[train]\nsteps = 3\n"),
              HasSubstr(file() + ":3:10: objectives.0.weight must be >= 0, got -1"));
}

TEST_F(RegistryTest, ComponentWithoutTypeIsAnError) {
  EXPECT_THAT(check("[encoders.main]\ndim = 3\n"), HasSubstr(file() + ":1:1: encoders.main needs a 'type' key"));
  EXPECT_THAT(check("[encoders.main]\ntype = 3\n"), HasSubstr("encoders.main.type must be a string, got an integer"));
}

TEST_F(RegistryTest, ADuplicateAcrossPluginsIsRefusedAndStagesNothing) {
  Registrar other("other", "/plugins/libsslab-other.so");
  other.dataset("other.fresh", "", sslab::Schema{}, null_factory<sslab::Dataset>());
  other.encoder("toy.mlp", "", sslab::Schema{}, null_factory<sslab::Encoder>());
  EXPECT_EQ(user_error([&] { other.commit(registries_); }),
            "/plugins/libsslab-other.so: plugin 'other' registers encoder 'toy.mlp', which is already registered by "
            "plugin 'toy' (/plugins/libsslab-toy.so)");
  EXPECT_EQ(registries_.find(ComponentKind::Dataset, "other.fresh"), nullptr);
  EXPECT_EQ(registries_.find(ComponentKind::Encoder, "toy.mlp")->plugin, "toy");
}

TEST_F(RegistryTest, ADuplicateWithinOnePluginIsRefusedAndStagesNothing) {
  Registrar twice("twice", "/plugins/libsslab-twice.so");
  twice.head("twice.fresh", "", sslab::Schema{}, null_factory<sslab::Head>());
  twice.head("twice.proj", "first", sslab::Schema{}, null_factory<sslab::Head>());
  twice.head("twice.proj", "second", sslab::Schema{}, null_factory<sslab::Head>());
  EXPECT_EQ(user_error([&] { twice.commit(registries_); }),
            "/plugins/libsslab-twice.so: plugin 'twice' registers head 'twice.proj' twice");
  EXPECT_TRUE(registries_.names(ComponentKind::Head).empty());
}

TEST_F(RegistryTest, TheSameNameMayExistForDifferentKinds) {
  Registrar r("multi", "");
  r.head("toy.mlp", "a head named like an encoder", sslab::Schema{}, null_factory<sslab::Head>());
  EXPECT_EQ(user_error([&] { r.commit(registries_); }), "<no exception>");
  EXPECT_NE(registries_.find(ComponentKind::Head, "toy.mlp"), nullptr);
}

TEST_F(RegistryTest, EmptyNamesAreRefused) {
  Registrar r("bad", "/plugins/libsslab-bad.so");
  EXPECT_EQ(user_error([&] { r.dataset("", "", sslab::Schema{}, null_factory<sslab::Dataset>()); }),
            "/plugins/libsslab-bad.so: plugin 'bad' registers a component with an empty name");
}

sslab::CommandFn exit_with(int code) {
  return [code](const std::vector<std::string>&) { return code; };
}

TEST_F(RegistryTest, ACommandIsRegisteredWithItsDocPluginAndFile) {
  Registrar r("toy", "/plugins/libsslab-toy.so");
  r.command("toy-run", "run the toy", exit_with(3));
  EXPECT_EQ(r.staged_commands(), std::vector<std::string>{"toy-run"});
  EXPECT_EQ(registries_.find_command("toy-run"), nullptr);  // staged only
  r.commit(registries_);
  const sslab::CommandEntry* c = registries_.find_command("toy-run");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->doc, "run the toy");
  EXPECT_EQ(c->plugin, "toy");
  EXPECT_EQ(c->file, "/plugins/libsslab-toy.so");
  EXPECT_EQ(c->run({}), 3);
}

TEST_F(RegistryTest, ADuplicateCommandAcrossPluginsIsRefusedNamingBoth) {
  Registrar first("first", "/plugins/libsslab-first.so");
  first.command("go", "", exit_with(0));
  first.commit(registries_);
  Registrar second("second", "/plugins/libsslab-second.so");
  second.encoder("second.fresh", "", sslab::Schema{}, null_factory<sslab::Encoder>());
  second.command("go", "", exit_with(1));
  EXPECT_EQ(user_error([&] { second.commit(registries_); }),
            "/plugins/libsslab-second.so: plugin 'second' registers command 'go', which is already registered by "
            "plugin 'first' (/plugins/libsslab-first.so)");
  EXPECT_EQ(registries_.find_command("go")->plugin, "first");
  EXPECT_EQ(registries_.find(ComponentKind::Encoder, "second.fresh"), nullptr);  // nothing of it committed
}

TEST_F(RegistryTest, ACommandTwiceInOnePluginIsRefused) {
  Registrar r("twice", "/plugins/libsslab-twice.so");
  r.command("go", "", exit_with(0));
  r.command("go", "", exit_with(1));
  EXPECT_EQ(user_error([&] { r.commit(registries_); }),
            "/plugins/libsslab-twice.so: plugin 'twice' registers command 'go' twice");
  EXPECT_TRUE(registries_.commands.empty());
}

TEST_F(RegistryTest, ACommandNamedLikeABuiltInIsRefused) {
  for (const std::string& name : sslab::builtin_command_names()) {
    Registrar r("greedy", "/plugins/libsslab-greedy.so");
    r.command(name, "", exit_with(0));
    EXPECT_EQ(user_error([&] { r.commit(registries_); }),
              "/plugins/libsslab-greedy.so: plugin 'greedy' registers command '" + name +
                  "', which is a built-in sslab command");
  }
  EXPECT_TRUE(registries_.commands.empty());
}

TEST_F(RegistryTest, CommandNamesAreOneLowercaseWord) {
  Registrar r("bad", "/plugins/libsslab-bad.so");
  for (const char* name : {"", "--help", "Upper", "two words", "a/b"}) {
    EXPECT_EQ(user_error([&] { r.command(name, "", exit_with(0)); }),
              std::string("/plugins/libsslab-bad.so: plugin 'bad' registers command '") + name +
                  "': a command name is one word of lowercase letters, digits and '-'");
  }
  EXPECT_EQ(user_error([&] { r.command("ok-2", "", exit_with(0)); }), "<no exception>");
}

}  // namespace
}  // namespace sslab_test
