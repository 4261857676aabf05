// The host's evaluation: the built-in probes evaluator (sslab.probes, also
// configured by the [eval] table), the end-of-run evaluation over every
// evaluator of a recipe, and eval.json.
#include "sslab/host/evaluation.h"
#include "sslab/host/run_folder.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sslab/host/json.h"
#include "sslab/host/protocols.h"
#include "sslab/host/recipe_schema.h"

namespace sslab {

namespace {

struct ProbesOptions {
  std::vector<std::string> encoders;  // empty: every encoder
  bool linear_probe = true;
  bool baselines = true;
  bool raw_baseline = true;
  ProbeSettings settings = [] {
    ProbeSettings s;
    s.batch_size = 512;
    return s;
  }();
};

Settings<ProbesOptions> probes_settings() {
  Settings<ProbesOptions> s;
  s.add("encoders", &ProbesOptions::encoders, "encoders to evaluate (empty: all)");
  s.add("linear_probe", &ProbesOptions::linear_probe, "linear probe on frozen embeddings (train -> test)");
  s.add("baselines", &ProbesOptions::baselines, "also evaluate the raw-input and random-encoder baselines");
  s.add("raw_baseline", &ProbesOptions::raw_baseline,
        "with baselines: include the probe on the flattened raw input (off for token ids or long waveforms)");
  add_probe_settings(s, [](ProbesOptions& o) -> ProbeSettings& { return o.settings; }, kProbeKeysAll);
  return s;
}

// Linear probe and kNN of each encoder on the "label" of the train/test
// splits, beside the raw-input and random-encoder baselines. Result names
// (prefixed "<encoder>/" when several encoders are evaluated): linear_probe,
// knn, baseline_raw_linear, baseline_random_encoder.
class Probes : public Evaluator {
 public:
  Probes(ProbesOptions options, std::string where) : o_(std::move(options)), where_(std::move(where)) {}

  EvalResults evaluate(BuildContext& ctx) override {
    EvalResults results;
    if (!ctx.has_dataset("train") || !ctx.has_dataset("test") || ctx.dataset("train")->num_classes() == 0)
      return results;  // nothing to probe: unlabelled data
    const Dataset& train = *ctx.dataset("train");
    const int64_t classes = train.num_classes();
    std::vector<std::string> names = o_.encoders.empty() ? ctx.encoder_names() : o_.encoders;
    const ProbeSettings& ps = o_.settings;
    ProbeOptions po = ps.probe;
    po.seed = ctx.seed();
    for (const auto& name : names) {
      const std::string prefix = names.size() == 1 ? "" : name + "/";
      ProbeTarget target(ctx, name, o_.baselines && ps.random_encoder, where_);
      std::vector<FeatureSpec> specs = target.features();
      if (o_.baselines && o_.raw_baseline) {
        const std::string key = target.input();
        specs.push_back({"raw", [key](const Batch& b) { return b.at(key).flatten(1); }, false});
      }
      const SplitFeatures f = embed_splits(ctx, ps, specs, {"label"}, where_);
      const Features &tr = f.train, &te = f.test;
      const torch::Tensor &ytr = tr.label("label"), &yte = te.label("label");
      auto probe = [&](const std::string& part) {
        return linear_probe_accuracy(tr.at(part), ytr, te.at(part), yte, classes, po);
      };
      if (o_.linear_probe) results[prefix + "linear_probe"]["accuracy"] = probe("encoder");
      if (ps.knn) {
        results[prefix + "knn"]["accuracy"] = knn_accuracy(tr.at("encoder"), ytr, te.at("encoder"), yte, classes, ps.knn_k);
        results[prefix + "knn"]["k"] = static_cast<double>(ps.knn_k);
      }
      if (tr.x.count("raw")) results[prefix + "baseline_raw_linear"]["accuracy"] = probe("raw");
      if (target.has_random()) results[prefix + "baseline_random_encoder"]["accuracy"] = probe("random");
      results[prefix + "linear_probe"]["train_samples"] = static_cast<double>(tr.size());
      results[prefix + "linear_probe"]["test_samples"] = static_cast<double>(te.size());
    }
    return results;
  }

 private:
  ProbesOptions o_;
  std::string where_;
};

}  // namespace

Schema probes_schema() { return probes_settings().schema(); }

std::shared_ptr<Evaluator> make_probes(const Config& cfg, BuildContext&) {
  static const Settings<ProbesOptions> settings = probes_settings();
  return std::make_shared<Probes>(settings.read(cfg), cfg.locate("encoders"));
}

void register_host_components(Registrar& r) {
  r.evaluator("sslab.probes",
              "linear probe + kNN of each encoder on \"label\" beside raw-input and random-encoder baselines (what "
              "[eval] configures)",
              probes_schema(), make_probes);
  r.evaluator("sslab.finetune",
              "fine-tunes an encoder with a fresh head on stratified label fractions over seeds, beside the same "
              "network from scratch and the frozen linear probe on the same subsets ([eval.finetune])",
              finetune_schema(), make_finetune);
  r.evaluator("sslab.fewshot",
              "k-shot nearest-prototype and logistic-regression accuracy on frozen features over seeded episodes, "
              "beside the random encoder ([eval.fewshot])",
              fewshot_schema(), make_fewshot);
}

void merge_results(EvalResults& into, std::map<std::string, std::string>& owners, const EvalResults& more,
                   const std::string& name) {
  for (const auto& [key, metrics] : more) {
    auto [it, fresh] = owners.emplace(key, name);
    SSLAB_CHECK(fresh, "evaluators ", it->second, " and ", name, " both write the result '", key,
                "' to eval.json; turn one off or give one another name or encoder");
    into[key] = metrics;
  }
}

EvalResults evaluate(Experiment& exp, const std::string& run_dir) {
  BuildContext& ctx = exp.context();
  EvalResults results;
  std::map<std::string, std::string> owners;
  for (auto& [name, evaluator] : exp.evaluators()) merge_results(results, owners, evaluator->evaluate(ctx), name);
  if (!run_dir.empty()) save_eval_json(results, (std::filesystem::path(run_dir) / "eval.json").string());
  return results;
}

std::string eval_json(const EvalResults& results) {
  // Non-finite values are null (JSON has no NaN); numbers keep 6 significant
  // digits as eval.json always had.
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [name, metrics] : results) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metrics) {
      m[k] = json_number(v, 6);
    }
    j[name] = std::move(m);
  }
  return j.dump(2) + "\n";
}

void save_eval_json(const EvalResults& results, const std::string& path) { write_file_atomic(path, eval_json(results)); }

EvalResults load_eval_json(const std::string& path) {
  std::ifstream in(path);
  SSLAB_CHECK(in.good(), path, ": cannot read it");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(str(path, ": not an eval.json (", e.what(), ")"));
  }
  SSLAB_CHECK(j.is_object(), path, ": not an eval.json (an object of results)");
  EvalResults out;
  for (const auto& [name, metrics] : j.items()) {
    SSLAB_CHECK(metrics.is_object(), path, ": result '", name, "' is not an object of metrics");
    for (const auto& [k, v] : metrics.items()) {
      SSLAB_CHECK(v.is_number() || v.is_null(), path, ": ", name, ".", k, " is not a number");
      out[name][k] = v.is_null() ? std::nan("") : v.get<double>();
    }
  }
  return out;
}

std::string eval_table(const EvalResults& results) {
  std::ostringstream out;
  out << "\nevaluation\n";
  for (const auto& [name, metrics] : results) {
    for (const auto& [k, v] : metrics) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "  %-40s %-12s %.4f\n", name.c_str(), k.c_str(), v);
      out << buf;
    }
  }
  return out.str();
}

}  // namespace sslab
