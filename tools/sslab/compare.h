// Runs side by side (sslab compare; sslab report's tables).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sslab::cli {

struct Comparison {
  struct Row {
    std::map<std::string, std::string> config;          // the resolved recipe without train.seed
    std::vector<std::string> runs;                      // its run folders (one per seed)
    int evaluated = 0;                                  // of which have eval.json
    std::map<std::string, std::vector<double>> values;  // metric -> one value per run that has it
    std::map<std::string, double> mean, std;            // over those values (std: sample, 0 for one)
  };
  std::vector<Row> rows;
  std::vector<std::string> columns;  // recipe keys whose values differ between rows
  std::vector<std::string> metrics;  // "<result>.<field>" of eval.json, and train.final_loss
  std::string metric;                // the one that picks the best row
  bool lower_is_better = false;
  int best = -1;
  std::vector<std::string> not_started;  // study runs without a recipe.toml yet
};

// Reads run folders, studies (study.json) and folders of runs; rows are
// configurations (runs differing only in train.seed share one). `metric`
// empty: the headline (linear_probe.accuracy, else the first non-baseline).
Comparison compare_runs(const std::vector<std::string>& inputs, std::string metric = "");
std::string comparison_table(const Comparison& c);
std::string comparison_csv(const Comparison& c);
nlohmann::ordered_json comparison_json(const Comparison& c);

}  // namespace sslab::cli
