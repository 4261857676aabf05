// Settings<Options>: one binding per key gives the schema its default (taken
// from the options struct), fills the struct from a recipe, resolves paths
// against the recipe's folder, and refuses bad values with file:line and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/arg.h>

#include "sslab/settings.h"
#include "test_util.h"

namespace sslab_test {
namespace {

using ::testing::HasSubstr;

struct Inner {
  int64_t depth = 2;
};

struct Options {
  int count = 3;
  uint64_t seed = 7;
  double rate = 0.5;
  bool flag = true;
  std::string name = "abc";
  std::string file = "data.tsv";
  std::vector<int64_t> sizes = {1, 2};
  std::vector<double> scale = {0.25};
  std::vector<std::string> files = {"a.txt"};
  Inner inner;
  TORCH_ARG(int64_t, width) = 16;
};

sslab::Settings<Options> settings() {
  sslab::Settings<Options> s;
  s.add("count", &Options::count, "a count").min(0);
  s.add("seed", &Options::seed, "a seed").min(0);
  s.add("rate", &Options::rate, "a rate").min(0).max(1);
  s.add("flag", &Options::flag, "a flag");
  s.add("name", &Options::name, "a name").choices({"abc", "xyz"});
  s.add("file", &Options::file, "a file").path();
  s.add("sizes", &Options::sizes, "sizes").min(1);
  s.add("scale", &Options::scale, "scales");
  s.add("files", &Options::files, "files").path();
  s.add("depth", [](Options& o) -> int64_t& { return o.inner.depth; }, "nested").min(1);
  s.add("width", SSLAB_ARG(Options, width), "a TORCH_ARG field").min(1);
  return s;
}

// The table [c] of a recipe file written to `dir`, validated against the settings' schema.
sslab::Config table(const TempDir& dir, const std::string& name, const std::string& text,
                    const sslab::Settings<Options>& s) {
  return sslab::Recipe::load(dir.write(name, text)).at("c").validate(s.schema(), {});
}

TEST(Settings, SchemaDefaultsAreTheStructsDefaults) {
  auto s = settings();
  auto def = [&](const std::string& key) {
    const sslab::KeySpec* spec = s.schema().find(key);
    EXPECT_NE(spec, nullptr) << key;
    return spec ? spec->default_value : sslab::DefaultValue();
  };
  EXPECT_EQ(def("count"), sslab::DefaultValue(int64_t{3}));
  EXPECT_EQ(def("seed"), sslab::DefaultValue(int64_t{7}));
  EXPECT_EQ(def("rate"), sslab::DefaultValue(0.5));
  EXPECT_EQ(def("flag"), sslab::DefaultValue(true));
  EXPECT_EQ(def("name"), sslab::DefaultValue(std::string("abc")));
  EXPECT_EQ(def("sizes"), sslab::DefaultValue(std::vector<int64_t>{1, 2}));
  EXPECT_EQ(def("scale"), sslab::DefaultValue(std::vector<double>{0.25}));
  EXPECT_EQ(def("files"), sslab::DefaultValue(std::vector<std::string>{"a.txt"}));
  EXPECT_EQ(def("depth"), sslab::DefaultValue(int64_t{2}));
  EXPECT_EQ(def("width"), sslab::DefaultValue(int64_t{16}));
  EXPECT_EQ(s.schema().find("count")->type, sslab::ValueType::Integer);
  EXPECT_EQ(s.schema().find("rate")->type, sslab::ValueType::Float);
  EXPECT_EQ(s.schema().find("sizes")->type, sslab::ValueType::IntArray);
  EXPECT_TRUE(s.schema().find("file")->path);
  EXPECT_FALSE(s.schema().find("name")->path);
  EXPECT_EQ(s.schema().find("count")->doc, "a count");
  // The keys in declaration order.
  std::vector<std::string> names;
  for (const auto& k : s.schema().keys()) names.push_back(k.name);
  EXPECT_EQ(names, (std::vector<std::string>{"count", "seed", "rate", "flag", "name", "file", "sizes", "scale", "files",
                                             "depth", "width"}));
}

TEST(Settings, AnEmptyTableGivesThePrototype) {
  TempDir dir;
  auto s = settings();
  Options o = s.read(table(dir, "r.toml", "[c]\n", s));
  EXPECT_EQ(o.count, 3);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.width(), 16);
  EXPECT_EQ(o.inner.depth, 2);
  EXPECT_EQ(o.sizes, (std::vector<int64_t>{1, 2}));
}

TEST(Settings, RecipeValuesLandInTheStruct) {
  TempDir dir;
  auto s = settings();
  Options o = s.read(table(dir, "r.toml",
                           "[c]\ncount = 9\nseed = 12345678901\nrate = 1\nflag = false\nname = \"xyz\"\n"
                           "sizes = [4, 5, 6]\nscale = [0.5, 2]\ndepth = 4\nwidth = 64\n",
                           s));
  EXPECT_EQ(o.count, 9);
  EXPECT_EQ(o.seed, uint64_t{12345678901});
  EXPECT_DOUBLE_EQ(o.rate, 1.0);  // an integer is a number
  EXPECT_FALSE(o.flag);
  EXPECT_EQ(o.name, "xyz");
  EXPECT_EQ(o.sizes, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(o.scale, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(o.inner.depth, 4);
  EXPECT_EQ(o.width(), 64);
  // A prototype passed in supplies the defaults instead.
  Options proto;
  proto.count = 11;
  sslab::Settings<Options> p(proto);
  p.add("count", &Options::count, "a count");
  EXPECT_EQ(p.schema().find("count")->default_value, sslab::DefaultValue(int64_t{11}));
}

TEST(Settings, PathKeysResolveAgainstTheRecipesFolder) {
  TempDir dir;
  auto s = settings();
  Options o = s.read(table(dir, "exp/r.toml",
                           "[c]\nfile = \"../data/x.tsv\"\nname = \"xyz\"\n"
                           "files = [\"one.txt\", \"/abs/two.txt\", \"sub/three.txt\"]\n",
                           s));
  EXPECT_EQ(o.file, (dir.path() / "data" / "x.tsv").string());
  EXPECT_EQ(o.files, (std::vector<std::string>{(dir.path() / "exp" / "one.txt").string(), "/abs/two.txt",
                                               (dir.path() / "exp" / "sub" / "three.txt").string()}));
  EXPECT_EQ(o.name, "xyz");  // a string that is not a path stays as written
}

TEST(Settings, OutOfRangeValuesAreRefusedWithFileLineAndKey) {
  TempDir dir;
  auto s = settings();
  std::string f = dir.write("bad.toml", "[c]\nrate = 0.5\nwidth = 0\n");
  EXPECT_THAT(user_error([&] { sslab::Recipe::load(f).at("c").validate(s.schema(), {}); }),
              HasSubstr(f + ":3:9: c.width must be >= 1, got 0"));
  std::string g = dir.write("bad2.toml", "[c]\nname = \"qq\"\n");
  EXPECT_THAT(user_error([&] { sslab::Recipe::load(g).at("c").validate(s.schema(), {}); }),
              HasSubstr(g + ":2:8: c.name must be one of abc, xyz, got 'qq'"));
}

TEST(Settings, RequiredKeysHaveNoDefault) {
  TempDir dir;
  sslab::Settings<Options> s;
  s.add("file", &Options::file, "a file").required().path();
  std::string f = dir.write("r.toml", "[c]\n");
  std::string msg = user_error([&] { sslab::Recipe::load(f).at("c").validate(s.schema(), {}); });
  EXPECT_THAT(msg, HasSubstr(f + ":"));
  EXPECT_THAT(msg, HasSubstr("c.file is required"));
}

}  // namespace
}  // namespace sslab_test
