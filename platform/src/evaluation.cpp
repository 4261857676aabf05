// Evaluation helpers of the SDK (sslab/evaluation.h). The host's own probes
// and the end-of-run evaluation are in run_evaluation.cpp.
#include "sslab/evaluation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace sslab {

void for_each_batch(const Dataset& data, int64_t limit, int64_t batch_size,
                    const std::function<void(const Batch&)>& fn) {
  SSLAB_CHECK(batch_size > 0, "for_each_batch: batch_size must be > 0, got ", batch_size);
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<Sample> samples;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) samples.push_back(data.get(i));
    fn(collate(samples));
  }
}

const torch::Tensor& Features::at(const std::string& name) const {
  auto it = x.find(name);
  SSLAB_ASSERT(it != x.end(), "no feature '", name, "' was computed");
  return it->second;
}

const torch::Tensor& Features::label(const std::string& key) const {
  auto it = labels.find(key);
  SSLAB_ASSERT(it != labels.end(), "no label '", key, "' was collected");
  return it->second;
}

int64_t Features::size() const {
  if (!x.empty()) return x.begin()->second.size(0);
  if (!labels.empty()) return labels.begin()->second.size(0);
  return 0;
}

Features embed_features(const Dataset& data, int64_t limit, int64_t batch_size, const torch::Device& device,
                        const std::vector<FeatureSpec>& features, const std::vector<std::string>& label_keys,
                        const std::string& who) {
  torch::NoGradGuard no_grad;
  std::map<std::string, std::vector<torch::Tensor>> xs, ys;
  for_each_batch(data, limit, batch_size, [&](const Batch& b) {
    for (const auto& key : label_keys) {
      SSLAB_CHECK(b.has(key), who, ": the samples have no '", key, "'");
      ys[key].push_back(b.at(key));
    }
    Batch on_device;
    bool moved = false;
    for (const auto& f : features) {
      const Batch* in = &b;
      if (f.on_device && !device.is_cpu()) {
        if (!moved) on_device = b.to(device), moved = true;
        in = &on_device;
      }
      xs[f.name].push_back(f.fn(*in).to(torch::kCPU, torch::kFloat32));
    }
  });
  Features out;
  for (auto& [k, v] : xs) out.x[k] = torch::cat(v);
  for (auto& [k, v] : ys) out.labels[k] = torch::cat(v);
  return out;
}

torch::Tensor embed_dataset(const Dataset& data, int64_t limit, int64_t batch_size, const torch::Device& device,
                            const std::function<torch::Tensor(const Batch&)>& fn, torch::Tensor* labels) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outs, ys;
  for_each_batch(data, limit, batch_size, [&](const Batch& batch) {
    if (labels && batch.has("label")) ys.push_back(batch.at("label"));
    outs.push_back(fn(device.is_cpu() ? batch : batch.to(device)).to(torch::kCPU, torch::kFloat32));
  });
  if (labels) *labels = ys.empty() ? torch::Tensor() : torch::cat(ys);
  SSLAB_CHECK(!outs.empty(), "embed_dataset: the dataset is empty");
  return torch::cat(outs);
}

namespace {

// The probes' shared training loop: a linear layer on standardised features,
// AdamW with a cosine learning rate, at least 500 updates. Returns the head
// and the standardised test features.
std::pair<torch::nn::Linear, torch::Tensor> train_linear_head(
    const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x, int64_t outputs,
    const ProbeOptions& o, const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& loss_fn) {
  torch::manual_seed(o.seed);
  torch::Tensor mean = train_x.mean(0, true), std = train_x.std(0, true, true) + 1e-6;
  torch::Tensor xtr = (train_x - mean) / std, xte = (test_x - mean) / std;
  torch::nn::Linear head(train_x.size(1), outputs);
  torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  const int64_t n = xtr.size(0);
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  // Small sets get more passes: at least 500 updates in all.
  const int64_t epochs = std::max<int64_t>(o.epochs, (500 + steps_per_epoch - 1) / steps_per_epoch);
  const int64_t total = epochs * steps_per_epoch;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    torch::Tensor perm = torch::randperm(n);
    for (int64_t s = 0; s < n; s += o.batch_size) {
      const double lr = 0.5 * o.lr * (1 + std::cos(M_PI * static_cast<double>(step++) / total));
      for (auto& g : opt.param_groups()) g.options().set_lr(lr);
      torch::Tensor idx = perm.slice(0, s, std::min(n, s + o.batch_size));
      torch::Tensor loss = loss_fn(head(xtr.index_select(0, idx)), train_y.index_select(0, idx));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  return {head, xte};
}

}  // namespace

double linear_probe_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y, const torch::Tensor& test_x,
                             const torch::Tensor& test_y, int64_t classes, const ProbeOptions& o) {
  auto [head, xte] = train_linear_head(train_x, train_y, test_x, classes, o, [](const auto& logits, const auto& y) {
    return torch::nn::functional::cross_entropy(logits, y);
  });
  torch::NoGradGuard no_grad;
  return (head(xte).argmax(1) == test_y).to(torch::kFloat64).mean().item<double>();
}

torch::Tensor multilabel_probe_scores(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                      const torch::Tensor& test_x, const ProbeOptions& o) {
  auto [head, xte] = train_linear_head(train_x, train_y, test_x, train_y.size(1), o, [](const auto& s, const auto& y) {
    return torch::nn::functional::binary_cross_entropy_with_logits(s, y);
  });
  torch::NoGradGuard no_grad;
  return head(xte);
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

double majority_accuracy(const torch::Tensor& train_y, const torch::Tensor& test_y, int64_t classes) {
  torch::Tensor counts = torch::bincount(train_y, {}, classes);
  return (test_y == counts.argmax()).to(torch::kFloat64).mean().item<double>();
}

double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets) {
  double sum = 0;
  int64_t classes = 0;
  for (int64_t c = 0; c < scores.size(1); ++c) {
    torch::Tensor y = targets.select(1, c).to(torch::kFloat64);
    const double positives = y.sum().item<double>();
    if (positives <= 0) continue;
    torch::Tensor order = scores.select(1, c).argsort(0, /*descending=*/true);
    torch::Tensor hits = y.index_select(0, order);
    torch::Tensor precision = hits.cumsum(0) / torch::arange(1, hits.size(0) + 1, torch::kFloat64);
    sum += (precision * hits).sum().item<double>() / positives;
    ++classes;
  }
  return classes ? sum / classes : 0.0;
}

double recall_at_m(const torch::Tensor& scores, const torch::Tensor& targets) {
  int64_t found = 0, total = 0;
  torch::Tensor order = scores.argsort(1, /*descending=*/true);
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const int64_t m = targets[i].sum().item<int64_t>();
    if (m == 0) continue;
    found += targets[i].index_select(0, order[i].slice(0, 0, m)).sum().item<int64_t>();
    total += m;
  }
  return total ? static_cast<double>(found) / static_cast<double>(total) : 0.0;
}

LabelSubset stratified_subset(const torch::Tensor& labels, double fraction, double val_fraction, uint64_t seed) {
  SSLAB_CHECK(fraction > 0 && fraction <= 1, "a label fraction must be in (0, 1], got ", fraction);
  SSLAB_CHECK(val_fraction >= 0 && val_fraction < 1, "a validation fraction must be in [0, 1), got ", val_fraction);
  SSLAB_CHECK(labels.dim() == 1 || labels.dim() == 2, "labels must be [N] classes or [N, K] multi-hot, got ",
              labels.sizes());
  torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = y.size(0);
  // Strata in order of first appearance, so the result does not depend on
  // how a stratum's key sorts.
  std::map<std::string, size_t> index;
  std::vector<std::vector<int64_t>> strata;
  for (int64_t i = 0; i < n; ++i) {
    std::string key;
    if (y.dim() == 1) {
      key = std::to_string(y[i].item<int64_t>());
    } else {
      torch::Tensor on = y[i].nonzero().flatten();
      const int64_t* p = on.data_ptr<int64_t>();
      for (int64_t j = 0; j < on.numel(); ++j) key += std::to_string(p[j]) + ",";
    }
    auto [it, fresh] = index.emplace(key, strata.size());
    if (fresh) strata.emplace_back();
    strata[it->second].push_back(i);
  }
  LabelSubset out;
  for (size_t s = 0; s < strata.size(); ++s) {
    std::vector<int64_t>& members = strata[s];
    Rng rng(mix_seed(seed, s, 0x5eed));
    std::shuffle(members.begin(), members.end(), rng);
    const auto size = static_cast<int64_t>(members.size());
    const int64_t take = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(size)), 1, size);
    int64_t val = static_cast<int64_t>(std::floor(val_fraction * static_cast<double>(take)));
    if (val == 0 && val_fraction > 0 && take >= 2) val = 1;
    out.val.insert(out.val.end(), members.begin(), members.begin() + val);
    out.train.insert(out.train.end(), members.begin() + val, members.begin() + take);
  }
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.val.begin(), out.val.end());
  return out;
}

namespace {

// Mean and 95% half-width (1.96 standard errors) of per-episode values.
std::pair<double, double> mean_ci95(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  var = v.size() > 1 ? var / static_cast<double>(v.size() - 1) : 0.0;
  return {mean, 1.96 * std::sqrt(var / static_cast<double>(v.size()))};
}

std::vector<int64_t> sample_without_replacement(const std::vector<int64_t>& from, int64_t k, Rng& rng) {
  std::vector<int64_t> pool = from;
  k = std::min<int64_t>(k, static_cast<int64_t>(pool.size()));
  for (int64_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, static_cast<int64_t>(pool.size()) - 1);
    std::swap(pool[i], pool[pick(rng)]);
  }
  pool.resize(k);
  return pool;
}

}  // namespace

FewShotResult few_shot_accuracy(const torch::Tensor& train_x, const torch::Tensor& train_y,
                                const torch::Tensor& test_x, const torch::Tensor& test_y, const FewShotOptions& o) {
  SSLAB_CHECK(train_y.dim() == 1 && test_y.dim() == 1, "few-shot evaluation needs single-label [N] labels");
  SSLAB_CHECK(o.shots > 0 && o.queries > 0 && o.episodes > 0, "few-shot: shots, queries and episodes must be > 0");
  torch::NoGradGuard no_grad;
  torch::Tensor ytr = train_y.to(torch::kCPU, torch::kInt64).contiguous();
  torch::Tensor yte = test_y.to(torch::kCPU, torch::kInt64).contiguous();
  std::map<int64_t, std::vector<int64_t>> by_train, by_test;
  for (int64_t i = 0; i < ytr.size(0); ++i) by_train[ytr[i].item<int64_t>()].push_back(i);
  for (int64_t i = 0; i < yte.size(0); ++i) by_test[yte[i].item<int64_t>()].push_back(i);
  std::vector<int64_t> classes;
  for (const auto& [c, members] : by_train)
    if (static_cast<int64_t>(members.size()) >= o.shots && by_test.count(c)) classes.push_back(c);
  SSLAB_CHECK(classes.size() >= 2, "few-shot with ", o.shots, " shots needs at least two classes with ", o.shots,
              " training samples and a test sample; ", classes.size(), " have them");
  const int64_t ways = o.ways > 0 ? o.ways : static_cast<int64_t>(classes.size());
  SSLAB_CHECK(ways >= 2 && ways <= static_cast<int64_t>(classes.size()), "few-shot: ways = ", o.ways, " but ",
              classes.size(), " classes have ", o.shots, " training samples and a test sample");

  namespace F = torch::nn::functional;
  const torch::Tensor mean = train_x.mean(0, true), std = train_x.std(0, true, true) + 1e-6;
  const torch::Tensor norm_tr = F::normalize(train_x, F::NormalizeFuncOptions().dim(1));
  const torch::Tensor norm_te = F::normalize(test_x, F::NormalizeFuncOptions().dim(1));
  const torch::Tensor std_tr = (train_x - mean) / std, std_te = (test_x - mean) / std;
  std::vector<double> proto_acc, logistic_acc;
  for (int64_t e = 0; e < o.episodes; ++e) {
    Rng rng(mix_seed(o.seed, static_cast<uint64_t>(e), 0xfe5));
    std::vector<int64_t> chosen = sample_without_replacement(classes, ways, rng);
    std::vector<int64_t> support, query, support_y, query_y;
    for (int64_t w = 0; w < ways; ++w) {
      for (int64_t i : sample_without_replacement(by_train[chosen[w]], o.shots, rng)) support.push_back(i), support_y.push_back(w);
      for (int64_t i : sample_without_replacement(by_test[chosen[w]], o.queries, rng)) query.push_back(i), query_y.push_back(w);
    }
    torch::Tensor s_idx = torch::tensor(support), q_idx = torch::tensor(query);
    torch::Tensor sy = torch::tensor(support_y), qy = torch::tensor(query_y);
    // Nearest prototype (cosine).
    torch::Tensor protos = torch::zeros({ways, train_x.size(1)});
    protos.index_add_(0, sy, norm_tr.index_select(0, s_idx));
    protos = F::normalize(protos, F::NormalizeFuncOptions().dim(1));
    torch::Tensor pred = torch::matmul(norm_te.index_select(0, q_idx), protos.t()).argmax(1);
    proto_acc.push_back((pred == qy).to(torch::kFloat64).mean().item<double>());
    // Logistic regression from zero weights (a convex problem: deterministic).
    torch::Tensor xs = std_tr.index_select(0, s_idx), xq = std_te.index_select(0, q_idx);
    torch::Tensor w = torch::zeros({train_x.size(1), ways}).requires_grad_(true);
    torch::Tensor b = torch::zeros({ways}).requires_grad_(true);
    {
      torch::AutoGradMode grad(true);
      torch::optim::AdamW opt({w, b}, torch::optim::AdamWOptions(o.logistic_lr).weight_decay(o.logistic_weight_decay));
      for (int64_t step = 0; step < o.logistic_steps; ++step) {
        torch::Tensor loss = F::cross_entropy(torch::matmul(xs, w) + b, sy);
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
    }
    pred = (torch::matmul(xq, w) + b).argmax(1);
    logistic_acc.push_back((pred == qy).to(torch::kFloat64).mean().item<double>());
  }
  FewShotResult r;
  std::tie(r.prototype, r.prototype_ci95) = mean_ci95(proto_acc);
  std::tie(r.logistic, r.logistic_ci95) = mean_ci95(logistic_acc);
  r.episodes = o.episodes;
  r.ways = ways;
  return r;
}

SplitFeatures embed_splits(const BuildContext& ctx, const ProbeSettings& s, const std::vector<FeatureSpec>& features,
                           const std::vector<std::string>& label_keys, const std::string& who) {
  SplitFeatures out;
  out.train = embed_features(*ctx.dataset("train", who), s.train_limit, s.batch_size, ctx.device(), features,
                             label_keys, who);
  out.test = embed_features(*ctx.dataset("test", who), s.test_limit, s.batch_size, ctx.device(), features,
                            label_keys, who);
  return out;
}

std::string resolve_encoder(const BuildContext& ctx, const std::string& name, const std::string& who) {
  if (!name.empty()) {
    ctx.encoder(name, who);  // the usual "no encoder named" error
    return name;
  }
  std::vector<std::string> names = ctx.encoder_names();
  SSLAB_CHECK(names.size() == 1, who, ": the recipe has ", names.size(), " encoders; set encoder = \"<name>\"");
  return names.front();
}

std::shared_ptr<Encoder> random_encoder(const BuildContext& ctx, const std::string& name) {
  // One seed for every evaluator of a run: their random baselines agree.
  auto enc = ctx.fresh_encoder(name, ctx.seed() + 7919);
  enc->eval();
  return enc;
}

ProbeTarget::ProbeTarget(const BuildContext& ctx, const std::string& name, bool with_random, const std::string& who)
    : name_(resolve_encoder(ctx, name, who)), encoder_(ctx.encoder(name_, who)) {
  if (with_random) random_ = random_encoder(ctx, name_);
  mode_ = std::make_unique<EvalMode>(std::vector<torch::nn::Module*>{encoder_.get()});
}

std::vector<FeatureSpec> ProbeTarget::features() const {
  std::vector<FeatureSpec> out{{"encoder", [enc = encoder_](const Batch& b) { return enc->embed(b); }}};
  if (random_) out.push_back({"random", [enc = random_](const Batch& b) { return enc->embed(b); }});
  return out;
}

EvalMode::EvalMode(std::vector<torch::nn::Module*> modules) {
  for (auto* m : modules) {
    saved_.emplace_back(m, m->is_training());
    m->eval();
  }
}

EvalMode::~EvalMode() {
  for (auto& [m, training] : saved_) m->train(training);
}

}  // namespace sslab
