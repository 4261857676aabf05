// The shape of a whole recipe: which sections exist, which keys the platform
// reads in each, and which registry each component table refers to.
//
//   name, description                 top level strings
//   [plugins]  load, path             plugins to load (names or paths)
//   [data.<split>]  type = dataset    + the dataset's keys
//   [[transforms.<input>]] type = transform (applied in order to <input>)
//   [tokenizers.<name>] type = tokenizer
//   [encoders.<name>]  type = encoder, input = batch key
//   [heads.<name>]     type = head
//   [[objectives]]     type = objective, weight
//   [[evaluators]]     type = evaluator
//   [train] [eval] [log] [checkpoint] [distributed]   platform sections
#pragma once

#include <string>
#include <vector>

#include "sslab/export.h"
#include "sslab/recipe.h"
#include "sslab/registry.h"  // component_config, common_schema

namespace sslab {

class PluginHost;

// Schemas of the platform's own sections.
SSLAB_API Schema plugins_schema();
SSLAB_API Schema train_schema();
SSLAB_API Schema eval_schema();
SSLAB_API Schema log_schema();
SSLAB_API Schema checkpoint_schema();
SSLAB_API Schema distributed_schema();

// Loads the plugins named in [plugins] (load = names or paths, path =
// extra folders, relative to the recipe). Errors name the recipe key.
SSLAB_API void load_recipe_plugins(const Recipe& recipe, PluginHost& host);

// Validates every section and every component table against its schema;
// throws UserError at the first problem. Builds nothing.
SSLAB_API void validate_recipe(const Recipe& recipe, const Registries& registries);

// The protocols [eval] protocols and `sslab eval --protocol` accept.
SSLAB_API const std::vector<std::string>& eval_protocols();

// What `sslab train` refuses beyond validate_recipe (no objective, no
// training split, bf16 on the CPU, accumulate not dividing the batch):
// `sslab check` runs it too, so it catches all of them before building.
SSLAB_API void validate_training(const Recipe& recipe);

}  // namespace sslab
