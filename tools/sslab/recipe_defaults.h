// The resolved recipe with every default the run will use, for
// `sslab check --print --defaults`.
#pragma once

#include <string>
#include <vector>

#include "sslab/recipe.h"

namespace sslab::cli {

// The platform's own recipe sections, in reference order: name, one-line
// doc, schema. eval.finetune and eval.fewshot apply when eval.protocols
// names them.
struct PlatformSection {
  const char* name;
  const char* doc;
  Schema (*schema)();
};
const std::vector<PlatformSection>& platform_sections();

// TOML that reads back (sslab check) to the same recipe: the recipe's own
// values, then each key a section's or component's schema gives a default
// for and the recipe leaves out, marked with a "# default" comment. Plugins
// must be loaded (the components' schemas come from the registries).
std::string recipe_with_defaults(const Recipe& recipe);

}  // namespace sslab::cli
