// Studies: a recipe over a grid of overrides and seeds (sslab sweep), read
// back by sslab compare and sslab report.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sslab/recipe.h"

namespace sslab::cli {

struct StudyRun {
  int64_t seed = 0;
  std::string dir;                // relative to the study folder: <point>/seed-<s>
  std::vector<std::string> sets;  // every --set of the run: the sweep's, the point's, train.seed
};

struct StudyPoint {
  std::string id;  // folder name: "lr=0.001,batch_size=64" (characters outside [A-Za-z0-9._=,+-] as '_')
  std::vector<std::pair<std::string, std::string>> values;  // grid key -> value text
  std::vector<StudyRun> runs;
};

struct StudySpec {
  std::string recipe;  // absolute path of the recipe file
  std::vector<std::string> sets;
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;
  int64_t seeds = 1;
  std::vector<StudyPoint> points;
};

// "a,b,[1,2],'x,y'" -> {"a", "b", "[1,2]", "'x,y'"}: commas inside brackets,
// braces or quotes do not split.
std::vector<std::string> split_grid_values(const std::string& text);

// The study of `recipe_file` (loaded as `base`, train.seed read from it) over
// --grid key=a,b,... arguments and `seeds` seeds. A grid without '=' or
// values, or a key given twice, is a UserError.
StudySpec make_study(const std::string& recipe_file, const std::vector<std::string>& sets,
                     const std::vector<std::string>& grids, int64_t seeds, const Recipe& base);

// Writes <dir>/study.json; a folder whose study.json is of another recipe,
// other overrides or another grid is a UserError (the seed count may change).
void save_study(const StudySpec& spec, const std::string& dir);
// Reads <dir>/study.json; false when there is none.
bool load_study(const std::string& dir, StudySpec& spec);

// A recipe file's values by dotted key ("train.lr", "objectives.0.type"),
// each as its TOML text.
std::map<std::string, std::string> flatten_recipe(const std::string& toml_text, const std::string& name);

}  // namespace sslab::cli
