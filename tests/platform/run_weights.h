// The trained weights a run folder's newest checkpoint holds, by
// "<module>.<parameter>", read through the recipe the run stored: for tests
// that compare two runs bit for bit or within a tolerance.
#pragma once

#include <map>
#include <string>

#include "sslab/host/checkpoint.h"
#include "sslab/host/experiment.h"
#include "sslab/host/run_folder.h"

namespace sslab_test {

// `host` loads each plugin once per process: pass the same one for every run.
inline std::map<std::string, torch::Tensor> run_weights(sslab::PluginHost& host, const std::string& run_dir) {
  sslab::Experiment exp(sslab::load_run_recipe(run_dir), host);
  sslab::load_weights(exp, sslab::latest_checkpoint(run_dir));
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, m] : exp.modules())
    for (const auto& p : m->named_parameters(true)) out[name + "." + p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace sslab_test
