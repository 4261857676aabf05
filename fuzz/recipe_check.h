// What the recipe targets do with a parsed recipe: walk every table the way
// the registries do (keys, child tables, arrays of tables, locations, schema
// validation and the typed getters), then check that to_toml() (what a
// checkpoint stores) parses back to the same text.
#pragma once

#include <cstdio>

#include <sslab/error.h>
#include <sslab/recipe.h>

#include "fuzz_util.h"

namespace sslab_fuzz {

// A schema with a key of every type under names recipes use.
inline sslab::Schema any_schema() {
  sslab::Schema s;
  s.integer("steps", 1, "").min(1);
  s.number("lr", 0.1, "").greater_than(0).max(10);
  s.boolean("enabled", false, "");
  s.string("mode", "a", "").choices({"a", "b"});
  s.string("root", "", "").path();
  s.integers("hidden", {1}, "");
  s.numbers("betas", {0.9, 0.99}, "").length(2);
  s.strings("load", std::vector<std::string>{}, "");
  s.strings("files", std::vector<std::string>{}, "").path();
  s.string("name", sslab::required, "");
  s.table("train", "");
  s.tables("objectives", "");
  return s;
}

inline void walk(const sslab::RecipeNode& node, int depth) {
  if (depth > 64 || !node.exists()) return;
  (void)node.where();
  for (const std::string& key : node.keys()) {
    (void)node.has(key);
    (void)node.locate(key);
    (void)node.folder_of(key);
    SSLAB_FUZZ_REJECTS_CLEANLY((void)node.required_string(key));
    walk(node.child(key), depth + 1);
    SSLAB_FUZZ_REJECTS_CLEANLY(for (const auto& t : node.table_array(key)) walk(t, depth + 1));
  }
  SSLAB_FUZZ_REJECTS_CLEANLY({
    sslab::Config c = node.validate(any_schema());
    (void)c.get_int("steps");
    (void)c.get_float("lr");
    (void)c.get_bool("enabled");
    (void)c.get_string("mode");
    (void)c.get_path("root");
    (void)c.get_ints("hidden");
    (void)c.get_floats("betas");
    (void)c.get_strings("load");
    (void)c.get_paths("files");
    (void)c.get_string("name");
  });
}

inline void check_recipe(const sslab::Recipe& recipe) {
  (void)recipe.name();
  walk(recipe.root(), 0);
  const std::string text = recipe.to_toml();
  std::string again;
  try {
    again = sslab::Recipe::parse_string(text, "<to_toml>").to_toml();
  } catch (const sslab::UserError& e) {
    std::fprintf(stderr, "to_toml() wrote a recipe that does not parse: %s\n---\n%s---\n", e.what(), text.c_str());
    SSLAB_FUZZ_CHECK(!"to_toml() output parses");
  }
  if (again != text)
    std::fprintf(stderr, "to_toml() wrote\n---\n%s---\nwhich parses back as\n---\n%s---\n", text.c_str(),
                 again.c_str());
  SSLAB_FUZZ_CHECK(again == text);
}

}  // namespace sslab_fuzz
