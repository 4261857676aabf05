// The end-of-run evaluation: every evaluator of an experiment (the [eval]
// table's probes first, then [[evaluators]]) into one EvalResults, with a
// result name written by two evaluators an error naming both; eval.json and
// the table on stdout.
#pragma once

#include <string>

#include "sslab/evaluation.h"
#include "sslab/host/experiment.h"

namespace sslab {

// Runs every evaluator of an experiment whose weights are loaded. Writes
// <run_dir>/eval.json when run_dir is not empty.
SSLAB_API EvalResults evaluate(Experiment& exp, const std::string& run_dir);

// Adds `more` (from the evaluator `name`) to `into`; a result name already
// there (from `owners`) is a UserError naming both evaluators.
SSLAB_API void merge_results(EvalResults& into, std::map<std::string, std::string>& owners, const EvalResults& more,
                             const std::string& name);

SSLAB_API std::string eval_json(const EvalResults& results);
// Writes eval_json(results) to path through a .tmp file and a rename, so a
// reader never sees half a file; a path that cannot be written is a UserError.
SSLAB_API void save_eval_json(const EvalResults& results, const std::string& path);
// Reads an eval.json (null values are NaN); a file that is not one is a
// UserError naming it.
SSLAB_API EvalResults load_eval_json(const std::string& path);
SSLAB_API std::string eval_table(const EvalResults& results);

// The host's built-in evaluator "sslab.probes" (linear probe and kNN of each
// encoder beside raw-input and random-encoder baselines) and the schema of
// the [eval] table, which configures the run's own instance of it.
SSLAB_API void register_host_components(Registrar& r);
SSLAB_API Schema probes_schema();
SSLAB_API std::shared_ptr<Evaluator> make_probes(const Config& cfg, BuildContext& ctx);

}  // namespace sslab
