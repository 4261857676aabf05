// A trained run loaded for commands that read its model: export, embed,
// eval --projector, report.
#pragma once

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/plugin_host.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/trainer.h"

namespace sslab::cli {

namespace fs = std::filesystem;

// A run's experiment with the weights of checkpoint step `step` (0: the
// newest readable one) loaded, its modules in eval mode.
struct LoadedRun {
  Recipe recipe;
  PluginHost host;
  std::unique_ptr<Experiment> exp;
  int64_t step = 0;
  std::string checkpoint;

  LoadedRun(const std::string& run_dir, int64_t want_step) : recipe(load_run_recipe(run_dir)) {
    set_threads(recipe.at("train").validate(train_schema(), {}).get_int("threads"));
    ExperimentOptions eo;
    eo.initialize = false;  // the checkpoint's weights replace any `init`
    exp = std::make_unique<Experiment>(recipe, host, nullptr, 0, eo);
    if (want_step > 0) {
      char name[40];
      std::snprintf(name, sizeof(name), "step-%09lld.pt", static_cast<long long>(want_step));
      checkpoint = (fs::path(run_dir) / "checkpoints" / name).string();
      if (!fs::exists(checkpoint)) {
        std::string have;
        for (const auto& f : checkpoints_newest_first(run_dir)) have += (have.empty() ? "" : ", ") + fs::path(f).filename().string();
        throw UserError(sslab::str(run_dir, ": no checkpoint of step ", want_step, " (it has: ", have.empty() ? "none" : have, ")"));
      }
      step = load_weights(*exp, checkpoint);
    } else {
      SSLAB_CHECK(!latest_checkpoint(run_dir).empty(), run_dir, ": no checkpoint to read (checkpoints/step-*.pt)");
      auto reader = open_latest_checkpoint(run_dir, exp->context().device(), std::cerr);
      checkpoint = reader->file();
      step = load_weights(*exp, *reader);
    }
    for (const auto& [n, m] : exp->modules()) m->eval();
  }
};

}  // namespace sslab::cli
