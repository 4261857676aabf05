// --set key.path=value overrides.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sslab/recipe.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/registry.h"
#include "test_util.h"

namespace sslab_test {
namespace {

using sslab::Recipe;
using ::testing::HasSubstr;

class OverrideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.write("recipe.toml",
                       "[plugins]\nload = [\"template\"]\n"
                       "[train]\nsteps = 10\nbatch_size = 32\nlr = 0.01\n"
                       "[[objectives]]\ntype = \"x.loss\"\n"
                       "[[objectives]]\ntype = \"y.loss\"\nweight = 0.5\n");
  }
  Recipe load(const std::vector<std::string>& sets) { return Recipe::load(file_, sets); }
  sslab::Config train(const Recipe& r) { return r.at("train").validate(sslab::train_schema(), {}); }
  std::string validate(const std::vector<std::string>& sets) {
    std::string msg = user_error([&] {
      Recipe r = load(sets);
      r.at("train").validate(sslab::train_schema(), {});
    });
    return msg == "<no exception>" ? "" : msg;
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(OverrideTest, Numbers) {
  Recipe r = load({"train.batch_size=64", "train.lr=0.5", "train.seed=3"});
  EXPECT_EQ(train(r).get_int("batch_size"), 64);
  EXPECT_DOUBLE_EQ(train(r).get_float("lr"), 0.5);
  EXPECT_EQ(train(r).get_int("seed"), 3);
}

TEST_F(OverrideTest, TheLastOverrideWins) {
  EXPECT_EQ(train(load({"train.steps=5", "train.steps=6"})).get_int("steps"), 6);
}

TEST_F(OverrideTest, QuotedAndBareStrings) {
  EXPECT_EQ(train(load({"train.optimizer=\"sgd\""})).get_string("optimizer"), "sgd");
  // A value that is not TOML is taken as a string.
  EXPECT_EQ(train(load({"train.optimizer=sgd"})).get_string("optimizer"), "sgd");
  EXPECT_EQ(load({"train.optimizer=sgd"}).at("train").where("optimizer"), "--set train.optimizer=sgd");
  Recipe r = load({"name=my run", "description=a=b"});
  EXPECT_EQ(r.name(), "my run");
  EXPECT_EQ(r.root().required_string("description"), "a=b");  // only the first '=' splits
}

TEST_F(OverrideTest, Arrays) {
  Recipe r = load({"plugins.load=[\"template\", \"vision\"]", "train.betas=[0.8, 0.9]"});
  EXPECT_EQ(r.at("plugins").validate(sslab::plugins_schema(), {}).get_strings("load"),
            (std::vector<std::string>{"template", "vision"}));
  EXPECT_EQ(train(r).get_floats("betas"), (std::vector<double>{0.8, 0.9}));
}

TEST_F(OverrideTest, CreatesMissingTables) {
  Recipe r = load({"checkpoint.every_steps=5", "data.train.type=template.blobs", "data.train.size=100"});
  EXPECT_EQ(r.at("checkpoint").validate(sslab::checkpoint_schema(), {}).get_int("every_steps"), 5);
  EXPECT_TRUE(r.at("data.train").exists());
  EXPECT_EQ(r.at("data.train").required_string("type"), "template.blobs");
}

TEST_F(OverrideTest, IndexesIntoArraysOfTables) {
  Recipe r = load({"objectives.1.weight=2.0", "objectives.0.type=z.loss"});
  auto objectives = r.root().table_array("objectives");
  ASSERT_EQ(objectives.size(), 2u);
  EXPECT_EQ(objectives[0].required_string("type"), "z.loss");
  sslab::Schema weight;
  weight.number("weight", 1.0, "");
  EXPECT_DOUBLE_EQ(objectives[1].validate(weight).get_float("weight"), 2.0);
}

TEST_F(OverrideTest, OutOfRangeValueNamesTheOverride) {
  EXPECT_THAT(validate({"train.batch_size=-4"}),
              HasSubstr("--set train.batch_size=-4: train.batch_size must be >= 1, got -4"));
}

TEST_F(OverrideTest, WrongTypeNamesTheOverride) {
  EXPECT_THAT(validate({"train.batch_size=[1, 2]"}),
              HasSubstr("--set train.batch_size=[1, 2]: train.batch_size must be an integer, got an array"));
}

TEST_F(OverrideTest, BareStringErrorNamesTheOverride) {
  EXPECT_THAT(validate({"train.optimizer=adamx"}),
              HasSubstr("--set train.optimizer=adamx: train.optimizer must be one of adamw, "));
}

TEST_F(OverrideTest, UnknownKeyNamesTheOverrideAndSuggests) {
  std::string msg = validate({"train.bach_size=3"});
  EXPECT_THAT(msg, HasSubstr("--set train.bach_size=3: train.bach_size is not a known key"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'batch_size'?"));
}

TEST_F(OverrideTest, MalformedOverrides) {
  EXPECT_THAT(user_error([&] { load({"train.batch_size"}); }),
              HasSubstr("--set train.batch_size: expected key.path=value"));
  EXPECT_THAT(user_error([&] { load({"=3"}); }), HasSubstr("--set =3: expected key.path=value"));
  EXPECT_THAT(user_error([&] { load({"train..lr=3"}); }),
              HasSubstr("--set train..lr=3: empty part in key 'train..lr'"));
  EXPECT_THAT(user_error([&] { load({"train.batch_size.x=3"}); }),
              HasSubstr("--set train.batch_size.x=3: the parent of 'x' is not a table"));
  EXPECT_THAT(user_error([&] { load({"objectives.5.weight=1"}); }),
              HasSubstr("--set objectives.5.weight=1: '5' is not an index of the array before it (size 2)"));
}

// Found by fuzz/overrides_fuzz.cpp: an index too long for size_t threw
// std::out_of_range instead of a UserError.
TEST_F(OverrideTest, AnIndexPastSizeTIsNoIndex) {
  EXPECT_THAT(user_error([&] { load({"objectives.99999999999999999999999.weight=1"}); }),
              HasSubstr("'99999999999999999999999' is not an index of the array before it (size 2)"));
  EXPECT_FALSE(load({}).at("objectives.99999999999999999999999").exists());
}

// Found by fuzz/overrides_fuzz.cpp: a key or value that is not UTF-8 was
// stored, and to_toml() (the checkpoint's recipe) wrote it back as other
// characters. A recipe file with those bytes is refused; so is the override.
TEST_F(OverrideTest, RefusesInvalidUtf8) {
  EXPECT_THAT(user_error([&] { load({"train.l\xa6r=1"}); }),
              HasSubstr("--set train.l\xa6r=1: not valid UTF-8 (byte 7)"));
  EXPECT_THAT(user_error([&] { load({"name=caf\xe9"}); }), HasSubstr("not valid UTF-8 (byte 8)"));
  EXPECT_EQ(load({"name=caf\xc3\xa9"}).name(), "caf\xc3\xa9");
}

// Found by fuzz/overrides_fuzz.cpp: the keys an override adds follow the
// recipe's rule (RecipeTest.KeysWithQuotesOrControlCharactersAreRefused).
TEST_F(OverrideTest, RefusesKeysWithQuotesOrControlCharacters) {
  EXPECT_THAT(user_error([&] { load({"train.temperat'ure=0"}); }),
              HasSubstr("--set train.temperat'ure=0: the key 'temperat'ure' holds a quote or a control character"));
  EXPECT_THAT(user_error([&] { load({"train.a\tb=0"}); }), HasSubstr("holds a quote or a control character"));
  EXPECT_THAT(user_error([&] { load({"train={ \"a'b\" = 1 }"}); }),
              HasSubstr("--set train={ \"a'b\" = 1 }: the key 'a'b' holds a quote"));
}

// Found by fuzz/overrides_fuzz.cpp: "--set base.1=x" put a 'base' table in
// the resolved recipe, which the run folder's recipe.toml then could not be
// read back with (parse_string refuses 'base').
TEST_F(OverrideTest, BaseCannotBeOverridden) {
  EXPECT_THAT(user_error([&] { load({"base.1=x"}); }),
              HasSubstr("--set base.1=x: 'base' cannot be overridden (set it in the recipe file)"));
  EXPECT_THAT(user_error([&] { load({"base=other.toml"}); }), HasSubstr("'base' cannot be overridden"));
}

TEST_F(OverrideTest, OverridesApplyAfterBaseInheritance) {
  std::string child = dir_.write("child.toml", "base = \"recipe.toml\"\n[train]\nbatch_size = 16\n");
  Recipe r = Recipe::load(child, {"train.batch_size=8"});
  EXPECT_EQ(train(r).get_int("batch_size"), 8);
  EXPECT_EQ(train(r).get_int("steps"), 10);
}

}  // namespace
}  // namespace sslab_test
