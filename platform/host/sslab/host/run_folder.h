// The run folder: recipe.toml (the resolved recipe), source (the recipe file
// it came from), metrics.jsonl, tensorboard/ and checkpoints/.
#pragma once

#include <cstdint>
#include <string>

#include "sslab/export.h"
#include "sslab/recipe.h"

namespace sslab {

// runs/<recipe name>-<local time stamp>.
std::string default_run_dir(const Recipe& recipe);
// A fresh run: creates checkpoints/, writes recipe.toml and source, and an
// empty metrics.jsonl.
void create_run_folder(const std::string& run_dir, const Recipe& recipe);
// Writes a whole file atomically (to path.tmp, then renamed); a failed write
// (no space, quota, read-only) is a UserError naming the file and the reason,
// and leaves the old file as it was.
SSLAB_API void write_file_atomic(const std::string& path, const std::string& text);
// Reads the resolved recipe stored in a run folder.
SSLAB_API Recipe load_run_recipe(const std::string& run_dir);

// For a resumed run: keeps the lines of a metrics.jsonl whose "step" is at
// most `step` (those written up to the checkpoint resumed from). A line that
// is not a JSON object with an integer "step" (say, half written when the run
// was killed) is dropped.
SSLAB_API void truncate_metrics(const std::string& file, int64_t step);

}  // namespace sslab
