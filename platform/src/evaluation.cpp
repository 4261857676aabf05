#include "sslab/evaluation.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "sslab/recipe_schema.h"

namespace sslab {

torch::Tensor embed_dataset(Dataset& data, int64_t limit, int64_t batch_size, const torch::Device& device,
                            const std::function<torch::Tensor(const Batch&)>& fn, torch::Tensor* labels) {
  torch::NoGradGuard no_grad;
  int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  std::vector<torch::Tensor> outs, ys;
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<Sample> samples;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) samples.push_back(data.get(i));
    Batch b = collate(samples);
    if (labels && b.has("label")) ys.push_back(b.at("label"));
    if (!device.is_cpu()) b = b.to(device);
    outs.push_back(fn(b).to(torch::kCPU, torch::kFloat32));
  }
  if (labels) *labels = ys.empty() ? torch::Tensor() : torch::cat(ys);
  return torch::cat(outs);
}

double linear_probe_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                             const torch::Tensor& test_y, int64_t classes, const ProbeOptions& o) {
  torch::manual_seed(o.seed);
  torch::Tensor mean = train_x.mean(0, true), std = train_x.std(0, true, true) + 1e-6;
  torch::Tensor xtr = (train_x - mean) / std, xte = (test_x - mean) / std;
  torch::nn::Linear head(train_x.size(1), classes);
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  int64_t n = xtr.size(0);
  int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  // Small sets get more passes: at least 500 updates in all.
  int64_t epochs = std::max<int64_t>(o.epochs, (500 + steps_per_epoch - 1) / steps_per_epoch);
  int64_t total = epochs * steps_per_epoch, step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    torch::Tensor perm = torch::randperm(n);
    for (int64_t s = 0; s < n; s += o.batch_size) {
      // Cosine-decayed learning rate.
      double lr = 0.5 * o.lr * (1 + std::cos(M_PI * static_cast<double>(step++) / total));
      for (auto& g : opt.param_groups()) g.options().set_lr(lr);
      torch::Tensor idx = perm.slice(0, s, std::min(n, s + o.batch_size));
      torch::Tensor loss = torch::nn::functional::cross_entropy(head(xtr.index_select(0, idx)), train_y.index_select(0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  torch::NoGradGuard no_grad;
  return (head(xte).argmax(1) == test_y).to(torch::kFloat64).mean().item<double>();
}

double knn_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                    const torch::Tensor& test_y, int64_t classes, int64_t k) {
  torch::NoGradGuard no_grad;
  torch::Tensor tr = torch::nn::functional::normalize(train_x, torch::nn::functional::NormalizeFuncOptions().dim(1));
  torch::Tensor te = torch::nn::functional::normalize(test_x, torch::nn::functional::NormalizeFuncOptions().dim(1));
  k = std::min<int64_t>(k, tr.size(0));
  int64_t correct = 0;
  for (int64_t s = 0; s < te.size(0); s += 1024) {
    torch::Tensor chunk = te.slice(0, s, std::min(te.size(0), s + 1024));
    auto [sim, idx] = torch::matmul(chunk, tr.t()).topk(k, 1);
    torch::Tensor neighbours = train_y.index({idx});  // [b, k]
    torch::Tensor votes = torch::zeros({chunk.size(0), classes}, torch::kFloat64);
    votes.scatter_add_(1, neighbours, torch::ones_like(sim, torch::kFloat64));
    // Ties: add the summed similarity scaled below one vote.
    torch::Tensor simsum = torch::zeros({chunk.size(0), classes}, torch::kFloat64);
    simsum.scatter_add_(1, neighbours, sim.to(torch::kFloat64));
    votes += simsum / (k + 1.0);
    correct += (votes.argmax(1) == test_y.slice(0, s, s + chunk.size(0))).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / te.size(0);
}

static std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string eval_json(const EvalResults& results) {
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (const auto& [name, metrics] : results) {
    out << (first ? "\n  " : ",\n  ") << "\"" << name << "\": {";
    first = false;
    bool f2 = true;
    for (const auto& [k, v] : metrics) {
      out << (f2 ? "" : ", ") << "\"" << k << "\": " << json_number(v);
      f2 = false;
    }
    out << "}";
  }
  out << "\n}\n";
  return out.str();
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

EvalResults evaluate(Experiment& exp, const std::string& run_dir) {
  Config cfg = exp.recipe().at("eval").validate(eval_schema(), {});
  BuildContext& ctx = exp.context();
  EvalResults results;
  std::vector<std::string> names = cfg.get_strings("encoders");
  if (names.empty())
    for (const auto& kv : ctx.encoders) names.push_back(kv.first);
  bool labelled = ctx.datasets.count("train") && ctx.datasets.count("test") &&
                  ctx.datasets.at("train")->num_classes() > 0;
  if (labelled) {
    Dataset& train = *ctx.datasets.at("train");
    Dataset& test = *ctx.datasets.at("test");
    int64_t classes = train.num_classes();
    int64_t bs = cfg.get_int("batch_size"), ntr = cfg.get_int("train_limit"), nte = cfg.get_int("test_limit");
    ProbeOptions po;
    po.epochs = cfg.get_int("probe_epochs");
    po.lr = cfg.get_float("probe_lr");
    po.weight_decay = cfg.get_float("probe_weight_decay");
    po.seed = ctx.seed;
    for (const auto& name : names) {
      auto enc = ctx.encoder(name, exp.recipe().at("eval").locate("encoders"));
      std::string prefix = names.size() == 1 ? "" : name + "/";
      enc->eval();
      auto embed = [&](Encoder& e) {
        auto fn = [&](const Batch& b) { return e.embed(b); };
        torch::Tensor ytr, yte;
        torch::Tensor xtr = embed_dataset(train, ntr, bs, ctx.device, fn, &ytr);
        torch::Tensor xte = embed_dataset(test, nte, bs, ctx.device, fn, &yte);
        return std::make_tuple(xtr, ytr, xte, yte);
      };
      auto [xtr, ytr, xte, yte] = embed(*enc);
      if (cfg.get_bool("linear_probe"))
        results[prefix + "linear_probe"]["accuracy"] = linear_probe_accuracy(xtr, ytr, xte, yte, classes, po);
      if (cfg.get_bool("knn")) {
        results[prefix + "knn"]["accuracy"] = knn_accuracy(xtr, ytr, xte, yte, classes, cfg.get_int("knn_k"));
        results[prefix + "knn"]["k"] = static_cast<double>(cfg.get_int("knn_k"));
      }
      if (cfg.get_bool("baselines")) {
        if (cfg.get_bool("raw_baseline")) {
          std::string key = enc->input();
          auto raw = [&](const Batch& b) { return b.at(key).flatten(1).to(torch::kFloat32); };
          torch::Tensor rtr = embed_dataset(train, ntr, bs, torch::kCPU, raw, nullptr);
          torch::Tensor rte = embed_dataset(test, nte, bs, torch::kCPU, raw, nullptr);
          results[prefix + "baseline_raw_linear"]["accuracy"] =
              linear_probe_accuracy(rtr, ytr, rte, yte, classes, po);
        }
        auto fresh = exp.fresh_encoder(name, ctx.seed + 7919);
        fresh->eval();
        auto [ftr, fytr, fte, fyte] = embed(*fresh);
        results[prefix + "baseline_random_encoder"]["accuracy"] =
            linear_probe_accuracy(ftr, fytr, fte, fyte, classes, po);
      }
      results[prefix + "linear_probe"]["train_samples"] = static_cast<double>(xtr.size(0));
      results[prefix + "linear_probe"]["test_samples"] = static_cast<double>(xte.size(0));
    }
  }
  for (auto& evaluator : exp.evaluators()) {
    for (auto& [k, v] : evaluator->evaluate(ctx)) results[k] = v;
  }
  if (!run_dir.empty()) save_eval_json(results, (std::filesystem::path(run_dir) / "eval.json").string());
  return results;
}

void save_eval_json(const EvalResults& results, const std::string& path) {
  std::ofstream out(path + ".tmp");
  out << eval_json(results);
  out.close();
  SSLAB_CHECK(out.good(), path, ": cannot write the evaluation results here");
  std::filesystem::rename(path + ".tmp", path);
}

}  // namespace sslab
