// Internal: the toml++ tree behind a Recipe.
#pragma once

#include <string>
#include <vector>

#include <toml++/toml.h>

namespace sslab {

class RecipeDoc {
 public:
  toml::table root;
  std::string file;

  // Splits "a.b.0.c" into segments.
  static std::vector<std::string> split(const std::string& dotted);
  // The node at a dotted path, or nullptr.
  const toml::node* find(const std::string& dotted) const;
  toml::node* find(const std::string& dotted);
};

// "file:line:col" of a source region ("<recipe>" when unknown).
std::string where_of(const toml::source_region& region);

}  // namespace sslab
