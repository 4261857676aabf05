// sslab train / sslab eval.

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "projector.h"
#include "sslab/host/checkpoint.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/signals.h"
#include "sslab/host/trainer.h"

namespace sslab::cli {

int cmd_train(const Args& args) {
  po::options_description opts("sslab train RECIPE [options] | sslab train --resume RUN_DIR");
  std::string recipe_file, resume_dir, out;
  std::vector<std::string> sets;
  bool no_eval = false, or_resume = false;
  int64_t threads = 0;
  opts.add_options()("help,h", "show this help")("set", po::value(&sets), "override a key: key.path=value (repeatable)")(
      "out", po::value(&out), "run folder (default: runs/<recipe name>-<timestamp>)")(
      "resume", po::value(&resume_dir), "continue the run in this folder from its newest checkpoint")(
      "or-resume", po::bool_switch(&or_resume),
      "with --out: when the folder already holds checkpoints of this same recipe, continue from the newest "
      "(a command a scheduler can simply rerun)")(
      "threads", po::value(&threads),
      "intra-op threads, overriding train.threads without changing the recipe (sslab sweep sets it)")(
      "no-eval", po::bool_switch(&no_eval), "skip the evaluation at the end")(
      "recipe", po::value(&recipe_file), "recipe file");
  po::variables_map vm;
  if (!parse_args(args, opts, "recipe", vm)) return 0;
  if (threads < 0) throw po::error("--threads must be positive");
  if (or_resume && out.empty()) throw po::error("--or-resume needs --out (the folder to continue)");
  TrainOptions options;
  options.out = out;
  options.evaluate = !no_eval;
  options.threads = threads;
  TrainResult result;
  if (!resume_dir.empty()) {
    if (!recipe_file.empty() || !sets.empty()) throw po::error("--resume takes no recipe or --set (the run folder has its recipe)");
    result = resume(resume_dir, options);
  } else {
    if (recipe_file.empty()) throw po::error("a recipe file (or --resume RUN_DIR) is required");
    Recipe recipe = Recipe::load(recipe_file, sets);
    if (or_resume && !latest_checkpoint(out).empty()) {
      // The same experiment, or a clear refusal: a folder is never continued with another recipe.
      const std::string stored = load_run_recipe(out).to_toml(), given = recipe.to_toml();
      if (stored != given) {
        std::istringstream a(stored), b(given);
        std::string la, lb;
        int line = 0;
        while (true) {
          bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
          ++line;
          if (!ga || !gb || la != lb) break;
        }
        throw UserError(str(out, " holds a run of another recipe (line ", line, " of its recipe.toml is '", la,
                            "', this recipe's is '", lb, "'); choose another --out"));
      }
      options.out.clear();
      result = resume(out, options);
    } else {
      result = train(recipe, options);
    }
  }
  if (result.stopped_by != 0) return kExitInterrupted;  // the trainer said where the checkpoint is
  std::cout << "trained " << result.steps << " steps, final loss " << result.final_loss << "; run folder "
            << result.run_dir << "\n";
  return 0;
}

int cmd_eval(const Args& args) {
  po::options_description opts("sslab eval RUN_DIR [options]");
  std::string run_dir;
  std::string out_file;
  bool json = false;
  std::vector<std::string> sets, protocols;
  int64_t projector = 0;
  opts.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print eval.json instead of a table")(
      "projector", po::value(&projector),
      "also write TensorBoard projector files of the first N test samples (embeddings, labels, image "
      "thumbnails) under RUN_DIR/tensorboard/")(
      "protocol", po::value(&protocols),
      "run only this protocol of [eval] (repeatable): probe, finetune ([eval.finetune]) or fewshot "
      "([eval.fewshot]); its results are merged into RUN_DIR/eval.json")(
      "set", po::value(&sets),
      "override a recipe key for this evaluation: eval.probe_epochs=100, eval.finetune.fractions=[0.01], "
      "encoders.image.input_size=36 (repeatable)")(
      "out", po::value(&out_file),
      "write the results as JSON here (default: RUN_DIR/eval.json without --set; with --set, only here, so the "
      "training's own eval.json is kept)")("run", po::value(&run_dir), "run folder");
  po::variables_map vm;
  if (!parse_args(args, opts, "run", vm)) return 0;
  if (run_dir.empty()) throw po::error("a run folder is required");
  if (projector < 0) throw po::error("--projector must be positive");
  for (const auto& p : protocols)
    if (!std::count(eval_protocols().begin(), eval_protocols().end(), p))
      throw po::error("unknown protocol '" + p + "'; " + suggestion_text(p, eval_protocols()));
  SSLAB_CHECK(!latest_checkpoint(run_dir).empty(), run_dir, ": no checkpoint to evaluate");
  Recipe stored = load_run_recipe(run_dir);
  std::vector<std::string> all_sets = sets;
  if (!protocols.empty()) {
    std::string list;
    for (const auto& p : protocols) list += (list.empty() ? "\"" : ", \"") + p + "\"";
    all_sets.push_back("eval.protocols=[" + list + "]");
  }
  Recipe recipe = all_sets.empty() ? stored : Recipe::parse_string(stored.to_toml(), stored.file(), all_sets);
  set_threads(recipe.at("train").validate(train_schema(), {}).get_int("threads"));
  PluginHost host;
  ExperimentOptions eo;
  eo.initialize = false;  // the checkpoint's weights replace any `init`
  Experiment exp(recipe, host, nullptr, 0, eo);
  load_weights(exp, *open_latest_checkpoint(run_dir, exp.context().device(), std::cerr));
  for (const auto& [n, m] : exp.modules()) m->eval();
  if (!protocols.empty()) {
    // Only the [eval] protocols asked for, not the recipe's [[evaluators]].
    auto& evaluators = exp.evaluators();
    evaluators.erase(std::remove_if(evaluators.begin(), evaluators.end(),
                                    [](const auto& e) { return e.first.rfind("[eval", 0) != 0; }),
                     evaluators.end());
  }
  const std::string own = (std::filesystem::path(run_dir) / "eval.json").string();
  EvalResults results = evaluate(exp, "");
  if (!out_file.empty()) save_eval_json(results, out_file);
  if (sets.empty() && out_file.empty()) {
    if (protocols.empty()) {
      save_eval_json(results, own);
    } else {
      // Added to what the run already has (same-named results replaced).
      EvalResults merged = std::filesystem::exists(own) ? load_eval_json(own) : EvalResults{};
      for (const auto& [k, v] : results) merged[k] = v;
      save_eval_json(merged, own);
    }
  }
  std::cout << (json ? eval_json(results) : eval_table(results));
  // What on_error = "skip" skipped, beside the results it affected.
  if (exp.skip_log().count() > 0) {
    std::string listed = out_file.empty() ? (sets.empty() ? (std::filesystem::path(run_dir) / "skipped_eval.tsv").string() : "")
                                          : out_file + ".skipped.tsv";
    if (!listed.empty()) exp.skip_log().write_tsv(listed);
    std::cerr << exp.skip_log().summary(listed);
  }
  if (projector > 0) {
    std::string config = write_projector(run_dir, embed_split(exp, "test", "", projector));
    std::cerr << "projector files: " << config << " (tensorboard --logdir " << run_dir << "/tensorboard)\n";
  }
  if (!sets.empty() && out_file.empty())
    std::cerr << "with --set the results are not saved (" << run_dir << "/eval.json is the training's); "
              << "pass --out FILE to keep them\n";
  return 0;
}

}  // namespace sslab::cli
