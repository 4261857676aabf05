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
#include "sslab/registry.h"

namespace sslab {

class PluginHost;

// Schemas of the platform's own sections.
SSLAB_API Schema plugins_schema();
SSLAB_API Schema train_schema();
SSLAB_API Schema eval_schema();
SSLAB_API Schema log_schema();
SSLAB_API Schema checkpoint_schema();
SSLAB_API Schema distributed_schema();
// Keys every component of a kind accepts besides its own (e.g. an
// objective's weight, an encoder's input).
SSLAB_API Schema common_schema(ComponentKind kind);

// Loads the plugins named in [plugins] (load = names or paths, path =
// extra folders, relative to the recipe). Errors name the recipe key.
SSLAB_API void load_recipe_plugins(const Recipe& recipe, PluginHost& host);

// Validates every section and every component table against its schema;
// throws UserError at the first problem. Builds nothing.
SSLAB_API void validate_recipe(const Recipe& recipe, const Registries& registries);

// The validated Config of a component table: its registry entry's schema
// merged with the kind's common keys.
SSLAB_API Config component_config(const RecipeNode& node, ComponentKind kind, const Registries& registries);

}  // namespace sslab
