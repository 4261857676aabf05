// sslab check: load a recipe's plugins and validate all of it.

#include <iostream>

#include "args.h"
#include "commands.h"
#include "recipe_defaults.h"
#include "sslab/host/plugin_host.h"
#include "sslab/recipe.h"
#include "sslab/host/recipe_schema.h"

namespace sslab::cli {

int cmd_check(const Args& args) {
  po::options_description opts("sslab check RECIPE [options]");
  std::string recipe_file;
  std::vector<std::string> sets;
  bool print = false, base = false, defaults = false;
  opts.add_options()("help,h", "show this help")("set", po::value(&sets), "override a key: key.path=value (repeatable)")(
      "print", po::bool_switch(&print), "print the resolved recipe as TOML")(
      "defaults", po::bool_switch(&defaults),
      "with --print: also every default the run will use, each marked '# default'")(
      "base", po::bool_switch(&base),
      "the file is a base other recipes extend: skip what only a trainable recipe needs (objectives, training "
      "split)")(
      "recipe", po::value(&recipe_file), "recipe file");
  po::variables_map vm;
  if (!parse_args(args, opts, "recipe", vm)) return 0;
  if (recipe_file.empty()) throw po::error("a recipe file is required");
  Recipe recipe = Recipe::load(recipe_file, sets);
  PluginHost host;
  load_recipe_plugins(recipe, host);
  validate_recipe(recipe, Registries::global());
  if (!base) validate_training(recipe);
  if (defaults && !print) throw po::error("--defaults goes with --print");
  if (print) std::cout << (defaults ? recipe_with_defaults(recipe) : recipe.to_toml());
  // After --print, as a TOML comment: the output stays a recipe that reads back.
  std::cout << (print ? "# " : "") << recipe_file << ": ok (" << host.loaded().size() << " plugin(s) loaded)\n";
  return 0;
}

}  // namespace sslab::cli
