// sslab compare: runs and studies side by side, one row per configuration
// (runs that differ only in train.seed are one row, mean ± std over them).

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "compare.h"
#include "study.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/json.h"
#include "sslab/host/run_folder.h"

namespace fs = std::filesystem;

namespace sslab::cli {

namespace {

// Fields of eval.json results that count things rather than measure them.
bool bookkeeping(const std::string& field) {
  static const std::set<std::string> names = {"k", "train_samples", "test_samples", "episodes", "shots", "fraction",
                                              "seeds", "classes", "steps", "epochs", "n", "samples", "queries"};
  return names.count(field) != 0;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double last_loss(const fs::path& metrics) {
  std::ifstream in(metrics);
  std::string line;
  double loss = std::nan("");
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("loss") && j["loss"].is_number()) loss = j["loss"].get<double>();
  }
  return loss;
}

}  // namespace

Comparison compare_runs(const std::vector<std::string>& inputs, std::string metric) {
  struct RunInfo {
    std::string dir;
    std::map<std::string, std::string> recipe;
    std::map<std::string, double> metrics;
    bool evaluated = false;
  };
  std::vector<RunInfo> runs;
  std::vector<std::string> missing;
  auto add_run = [&](const fs::path& dir) {
    if (!fs::exists(dir / "recipe.toml")) {
      missing.push_back(dir.string());
      return;
    }
    RunInfo r;
    r.dir = dir.string();
    r.recipe = flatten_recipe(read_file(dir / "recipe.toml"), (dir / "recipe.toml").string());
    if (fs::exists(dir / "eval.json")) {
      EvalResults e = load_eval_json((dir / "eval.json").string());
      for (const auto& [name, fields] : e)
        for (const auto& [field, value] : fields)
          if (!bookkeeping(field)) r.metrics[name + "." + field] = value;
      r.evaluated = true;
    }
    double loss = last_loss(dir / "metrics.jsonl");
    if (std::isfinite(loss)) r.metrics["train.final_loss"] = loss;
    runs.push_back(std::move(r));
  };
  for (const auto& in : inputs) {
    SSLAB_CHECK(fs::is_directory(in), in, ": not a run or study folder");
    StudySpec spec;
    if (load_study(in, spec)) {
      for (const auto& p : spec.points)
        for (const auto& r : p.runs) add_run(fs::path(in) / r.dir);
    } else if (fs::exists(fs::path(in) / "recipe.toml")) {
      add_run(in);
    } else {
      // A folder of run folders (runs/).
      std::vector<fs::path> dirs;
      for (const auto& e : fs::directory_iterator(in))
        if (e.is_directory() && fs::exists(e.path() / "recipe.toml")) dirs.push_back(e.path());
      SSLAB_CHECK(!dirs.empty(), in, ": not a run folder (no recipe.toml), a study (no study.json) or a folder of runs");
      std::sort(dirs.begin(), dirs.end());
      for (const auto& d : dirs) add_run(d);
    }
  }
  SSLAB_CHECK(!runs.empty(), "no runs to compare (none of them has started: ", missing.size(), " without recipe.toml)");

  // Configurations: the recipe without train.seed.
  Comparison c;
  c.not_started = missing;
  std::map<std::string, size_t> by_config;
  for (const auto& r : runs) {
    std::string key;
    for (const auto& [k, v] : r.recipe)
      if (k != "train.seed") key += k + "=" + v + "\n";
    auto it = by_config.find(key);
    if (it == by_config.end()) {
      it = by_config.emplace(key, c.rows.size()).first;
      Comparison::Row row;
      for (const auto& [k, v] : r.recipe)
        if (k != "train.seed") row.config[k] = v;
      c.rows.push_back(row);
    }
    Comparison::Row& row = c.rows[it->second];
    row.runs.push_back(r.dir);
    if (r.evaluated) ++row.evaluated;
    for (const auto& [m, v] : r.metrics) row.values[m].push_back(v);
  }
  // The keys whose values differ between rows (all of them absent counts as a value).
  std::set<std::string> keys;
  for (const auto& row : c.rows)
    for (const auto& [k, v] : row.config) keys.insert(k);
  for (const auto& k : keys) {
    std::set<std::string> seen;
    for (const auto& row : c.rows) seen.insert(row.config.count(k) ? row.config.at(k) : "(unset)");
    if (seen.size() > 1 && k != "name") c.columns.push_back(k);
  }
  std::set<std::string> metrics;
  for (const auto& row : c.rows)
    for (const auto& [m, v] : row.values) metrics.insert(m);
  // The headline first, then the rest in name order.
  for (const char* m : {"linear_probe.accuracy", "knn.accuracy"})
    if (metrics.count(m)) c.metrics.push_back(m);
  for (const auto& m : metrics)
    if (std::find(c.metrics.begin(), c.metrics.end(), m) == c.metrics.end()) c.metrics.push_back(m);
  for (auto& row : c.rows) {
    for (const auto& [m, vs] : row.values) {
      double mean = 0;
      for (double v : vs) mean += v;
      mean /= static_cast<double>(vs.size());
      double var = 0;
      for (double v : vs) var += (v - mean) * (v - mean);
      row.mean[m] = mean;
      row.std[m] = vs.size() > 1 ? std::sqrt(var / static_cast<double>(vs.size() - 1)) : 0.0;
    }
  }
  if (metric.empty()) {
    for (const auto& m : c.metrics)
      if (m != "train.final_loss" && m.find("baseline") == std::string::npos && m.find("chance") == std::string::npos &&
          m.find("scratch") == std::string::npos && m.find(".pairs") == std::string::npos) {
        metric = m;
        break;
      }
    if (metric.empty() && !c.metrics.empty()) metric = c.metrics.front();
  } else {
    SSLAB_CHECK(std::find(c.metrics.begin(), c.metrics.end(), metric) != c.metrics.end(), "--metric ", metric,
                ": no run has it (they have: ", [&] {
                  std::string s;
                  for (const auto& m : c.metrics) s += (s.empty() ? "" : ", ") + m;
                  return s;
                }(), ")");
  }
  c.metric = metric;
  const bool lower = metric.find("loss") != std::string::npos || metric.find("error") != std::string::npos;
  c.lower_is_better = lower;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    if (!c.rows[i].mean.count(metric)) continue;
    if (c.best < 0 || (lower ? c.rows[i].mean[metric] < c.rows[static_cast<size_t>(c.best)].mean[metric]
                             : c.rows[i].mean[metric] > c.rows[static_cast<size_t>(c.best)].mean[metric]))
      c.best = static_cast<int>(i);
  }
  return c;
}

namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(std::abs(v) >= 100 ? 1 : 4) << v;
  return s.str();
}

std::string cell(const Comparison::Row& row, const std::string& m) {
  if (!row.mean.count(m)) return "-";
  std::string out = fmt(row.mean.at(m));
  if (row.values.at(m).size() > 1) out += " ± " + fmt(row.std.at(m));
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Display width: "±" is one column but two bytes.
size_t width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

}  // namespace

std::string comparison_table(const Comparison& c) {
  std::vector<std::string> header = {""};
  for (const auto& k : c.columns) header.push_back(k);
  header.push_back("runs");
  for (const auto& m : c.metrics) header.push_back(m);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    std::vector<std::string> r = {static_cast<int>(i) == c.best ? "*" : ""};
    for (const auto& k : c.columns) r.push_back(row.config.count(k) ? row.config.at(k) : "(unset)");
    r.push_back(std::to_string(row.runs.size()));
    for (const auto& m : c.metrics) r.push_back(cell(row, m));
    rows.push_back(r);
  }
  std::vector<size_t> w(header.size());
  for (size_t j = 0; j < header.size(); ++j) {
    w[j] = width(header[j]);
    for (const auto& r : rows) w[j] = std::max(w[j], width(r[j]));
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t j = 0; j < r.size(); ++j) s += r[j] + std::string(w[j] - width(r[j]) + (j + 1 < r.size() ? 2 : 0), ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  if (c.best >= 0)
    out << "* best " << c.metric << " (" << (c.lower_is_better ? "lowest" : "highest") << " mean); mean ± std over "
        << "the seeds of each row\n";
  if (!c.not_started.empty()) out << c.not_started.size() << " run(s) not started yet (no recipe.toml)\n";
  return out.str();
}

std::string comparison_csv(const Comparison& c) {
  std::ostringstream out;
  out << "best";
  for (const auto& k : c.columns) out << "," << csv_field(k);
  out << ",runs";
  for (const auto& m : c.metrics) out << "," << csv_field(m + ".mean") << "," << csv_field(m + ".std");
  out << "\n";
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    out << (static_cast<int>(i) == c.best ? "1" : "0");
    for (const auto& k : c.columns) out << "," << csv_field(row.config.count(k) ? row.config.at(k) : "");
    out << "," << row.runs.size();
    for (const auto& m : c.metrics) {
      if (row.mean.count(m)) out << "," << row.mean.at(m) << "," << row.std.at(m);
      else out << ",,";
    }
    out << "\n";
  }
  return out.str();
}

nlohmann::ordered_json comparison_json(const Comparison& c) {
  nlohmann::ordered_json j;
  j["metric"] = c.metric;
  j["columns"] = c.columns;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    nlohmann::ordered_json r;
    r["best"] = static_cast<int>(i) == c.best;
    nlohmann::ordered_json config = nlohmann::ordered_json::object();
    for (const auto& k : c.columns) config[k] = row.config.count(k) ? row.config.at(k) : "";
    r["config"] = config;
    r["runs"] = row.runs;
    nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
    for (const auto& m : c.metrics) {
      if (!row.mean.count(m)) continue;
      nlohmann::ordered_json v;
      v["mean"] = json_number(row.mean.at(m), 8);
      v["std"] = json_number(row.std.at(m), 8);
      nlohmann::ordered_json values = nlohmann::ordered_json::array();
      for (double x : row.values.at(m)) values.push_back(json_number(x, 8));
      v["values"] = values;
      metrics[m] = v;
    }
    r["metrics"] = metrics;
    rows.push_back(r);
  }
  j["rows"] = rows;
  j["not_started"] = c.not_started;
  return j;
}

int cmd_compare(const Args& args) {
  po::options_description opts("sslab compare RUN_OR_STUDY... [options]");
  std::vector<std::string> inputs;
  std::string format = "table", metric;
  opts.add_options()("help,h", "show this help")("format", po::value(&format)->default_value("table"),
                                                 "table, csv or json")(
      "metric", po::value(&metric),
      "the metric that picks the best row (default: linear_probe.accuracy when present, else the first)")(
      "inputs", po::value(&inputs), "run folders, study folders (sslab sweep) or folders of runs");
  po::variables_map vm;
  if (!parse_args(args, opts, "inputs", vm, -1)) return 0;
  if (inputs.empty()) throw po::error("at least one run or study folder is required");
  if (format != "table" && format != "csv" && format != "json")
    throw po::error("unknown --format '" + format + "'; " + suggestion_text(format, {"table", "csv", "json"}));
  Comparison c = compare_runs(inputs, metric);
  if (format == "csv") std::cout << comparison_csv(c);
  else if (format == "json") std::cout << comparison_json(c).dump(2) << "\n";
  else std::cout << comparison_table(c);
  return 0;
}

}  // namespace sslab::cli
