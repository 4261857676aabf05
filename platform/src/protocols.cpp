// The downstream protocols: fine-tuning with label fractions beside a
// from-scratch arm (sslab.finetune) and few-shot episodes on frozen features
// (sslab.fewshot). See sslab/host/protocols.h and docs/protocols.md.
#include "sslab/host/protocols.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <regex>
#include <sstream>

#include <unistd.h>

#include "sslab/host/experiment.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_log.h"

namespace sslab {

namespace {

namespace F = torch::nn::functional;

// The head: standardisation of the pooled embedding (BatchNorm without
// affine parameters, as MAE's linear evaluation), then a linear layer or a
// one-hidden-layer MLP.
torch::nn::Sequential make_head(int64_t dim, int64_t outputs, const FinetuneSettings& s) {
  torch::nn::Sequential head;
  head->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(dim).affine(false)));
  if (s.head == "mlp") {
    head->push_back(torch::nn::Linear(dim, s.hidden));
    head->push_back(torch::nn::GELU());
    dim = s.hidden;
  }
  if (s.dropout > 0) head->push_back(torch::nn::Dropout(s.dropout));
  head->push_back(torch::nn::Linear(dim, outputs));
  return head;
}

using State = std::vector<torch::Tensor>;

State snapshot(torch::nn::Module& a, torch::nn::Module& b) {
  State out;
  for (auto* m : {&a, &b}) {
    for (const auto& p : m->parameters(true)) out.push_back(p.detach().clone());
    for (const auto& p : m->buffers(true)) out.push_back(p.detach().clone());
  }
  return out;
}

void restore(torch::nn::Module& a, torch::nn::Module& b, const State& state) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto* m : {&a, &b}) {
    for (auto& p : m->parameters(true)) p.copy_(state.at(i++));
    for (auto& p : m->buffers(true)) p.copy_(state.at(i++));
  }
}

// Accuracy (single label) or mAP (multi-hot) of encoder + head on `data`.
double score(Encoder& enc, torch::nn::Sequential head, const Dataset& data, int64_t limit, const FinetuneTask& task,
             int64_t batch_size, const torch::Device& device) {
  EvalMode mode({&enc, head.ptr().get()});
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> scores, targets;
  for_each_batch(data, limit, batch_size, [&](const Batch& b) {
    SSLAB_CHECK(b.has(task.label), "sslab.finetune: the test samples have no '", task.label, "'");
    Batch on = device.is_cpu() ? b : b.to(device);
    scores.push_back(head->forward(enc.embed(on)).to(torch::kCPU, torch::kFloat32));
    targets.push_back(b.at(task.label));
  });
  SSLAB_CHECK(!scores.empty(), "sslab.finetune: nothing to score (an empty split)");
  torch::Tensor s = torch::cat(scores), y = torch::cat(targets);
  if (task.multilabel) return mean_average_precision(s, y);
  return (s.argmax(1) == y).to(torch::kFloat64).mean().item<double>();
}

double sum_abs(torch::nn::Module& m) {
  double total = 0;
  for (const auto& p : m.parameters(true)) total += p.detach().abs().sum().item<double>();
  return total;
}

}  // namespace

std::string FinetuneSettings::describe() const {
  std::ostringstream o;
  o << "epochs=" << epochs << " min_steps=" << min_steps << " max_steps=" << max_steps << " batch_size=" << batch_size
    << " lr=" << lr << " min_lr=" << min_lr << " weight_decay=" << weight_decay << " warmup=" << warmup
    << " layer_decay=" << layer_decay << " head=" << head << " hidden=" << hidden << " dropout=" << dropout
    << " grad_clip=" << grad_clip << " checks=" << checks << " patience=" << patience;
  return o.str();
}

void copy_module_state(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto src = from.named_parameters(true), dst = to.named_parameters(true);
  SSLAB_ASSERT(src.size() == dst.size(), "copy_module_state: ", src.size(), " against ", dst.size(), " parameters");
  for (const auto& item : src) dst[item.key()].copy_(item.value());
  auto sb = from.named_buffers(true), db = to.named_buffers(true);
  SSLAB_ASSERT(sb.size() == db.size(), "copy_module_state: ", sb.size(), " against ", db.size(), " buffers");
  for (const auto& item : sb) db[item.key()].copy_(item.value());
}

std::vector<LrGroup> finetune_groups(torch::nn::Module& encoder, torch::nn::Module& head, double weight_decay,
                                     double layer_decay, const std::string& who) {
  // Key: (lr scale, decayed?) -> group.
  std::map<std::pair<double, bool>, LrGroup> groups;
  auto add = [&](const torch::Tensor& p, double scale) {
    if (!p.requires_grad()) return;
    const bool decay = p.dim() >= 2;
    LrGroup& g = groups[{scale, decay}];
    g.lr_scale = scale;
    g.weight_decay = decay ? weight_decay : 0.0;
    g.params.push_back(p);
  };
  auto named = encoder.named_parameters(true);
  if (layer_decay < 1.0) {
    static const std::regex block(R"((^|\.)blocks\.(\d+)\.)");
    std::vector<int64_t> layer(named.size(), -1);
    int64_t depth = 0;
    size_t i = 0;
    for (const auto& item : named) {
      std::smatch m;
      if (std::regex_search(item.key(), m, block)) {
        layer[i] = std::stoll(m[2].str()) + 1;
        depth = std::max(depth, layer[i]);
      }
      ++i;
    }
    SSLAB_CHECK(depth > 0, who, ": layer_decay < 1 needs a transformer encoder (parameters in blocks.<i>); this "
                "encoder has none, so set layer_decay = 1");
    i = 0;
    for (const auto& item : named) {
      int64_t l = layer[i++];
      if (l < 0) {
        // Before the blocks (embeddings, tokens) or after them (the final norm).
        const std::string& k = item.key();
        const bool after = k.rfind("norm", 0) == 0 || k.rfind("fc_norm", 0) == 0 || k.rfind("head", 0) == 0;
        l = after ? depth + 1 : 0;
      }
      add(item.value(), std::pow(layer_decay, static_cast<double>(depth + 1 - l)));
    }
  } else {
    for (const auto& item : named) add(item.value(), 1.0);
  }
  for (const auto& p : head.parameters(true)) add(p, 1.0);
  std::vector<LrGroup> out;
  for (auto& [k, g] : groups) out.push_back(std::move(g));
  return out;
}

int64_t finetune_steps(const FinetuneSettings& s, int64_t train_samples) {
  // The loader's batches per epoch: drop-last batches of min(batch_size, n).
  const int64_t batch = std::min(s.batch_size, train_samples);
  const int64_t per_epoch = batch > 0 ? train_samples / batch : 0;
  return std::clamp(s.epochs * per_epoch, s.min_steps, std::max(s.min_steps, s.max_steps));
}

FinetuneTrace finetune_encoder(const std::shared_ptr<Encoder>& encoder, const FinetuneTask& task,
                               const LabelSubset& subset, const FinetuneSettings& s, uint64_t head_seed,
                               uint64_t order_seed, const torch::Device& device,
                               const std::function<void(int64_t, double)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  SSLAB_CHECK(subset.train.size() >= 2, "sslab.finetune: ", subset.train.size(),
              " labelled training sample(s) after carving the validation split; raise the fraction");
  FinetuneTrace t;
  t.subset = subset;
  t.settings = s.describe();
  t.order_seed = order_seed;
  const int64_t outputs = task.classes;
  SSLAB_CHECK(outputs >= 2 || task.multilabel, "sslab.finetune: '", task.label, "' has ", outputs, " class(es)");

  torch::manual_seed(head_seed);
  torch::nn::Sequential head = make_head(encoder->embed_dim(), outputs, s);
  head->to(device);
  {
    std::vector<torch::Tensor> flat;
    for (const auto& p : head->parameters()) flat.push_back(p.detach().flatten().to(torch::kCPU));
    t.head_init = torch::cat(flat);
  }
  t.encoder_init_sum = sum_abs(*encoder);

  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> scales;
  for (auto& g : finetune_groups(*encoder, *head, s.weight_decay, s.layer_decay, "sslab.finetune")) {
    groups.emplace_back(g.params, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(s.lr * g.lr_scale).weight_decay(g.weight_decay)));
    scales.push_back(g.lr_scale);
  }
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(s.lr));
  std::vector<torch::Tensor> all_params;
  for (auto& g : opt.param_groups())
    for (auto& p : g.params()) all_params.push_back(p);

  auto train_data = subset_dataset(task.train, subset.train);
  LoaderOptions lo;
  lo.batch_size = std::min<int64_t>(s.batch_size, train_data->size());
  lo.workers = static_cast<int>(s.workers);
  lo.shuffle = true;
  lo.drop_last = true;
  lo.seed = order_seed;
  Loader loader(train_data, lo, task.augment);
  const int64_t steps = finetune_steps(s, train_data->size());
  const int64_t warm = static_cast<int64_t>(std::llround(s.warmup * static_cast<double>(steps)));
  const int64_t every = std::max<int64_t>(1, steps / std::max<int64_t>(1, s.checks));
  auto val_data = subset_dataset(task.train, subset.val);

  State best;
  double best_val = -1;
  int64_t bad = 0;
  encoder->train();
  head->train();
  int64_t step = 0;
  while (step < steps) {
    double lr = s.lr;
    if (step < warm) {
      lr = s.lr * static_cast<double>(step + 1) / static_cast<double>(warm);
    } else {
      const double p = steps > warm ? static_cast<double>(step - warm) / static_cast<double>(steps - warm) : 1.0;
      lr = s.min_lr + (s.lr - s.min_lr) * 0.5 * (1 + std::cos(M_PI * p));
    }
    for (size_t g = 0; g < opt.param_groups().size(); ++g) opt.param_groups()[g].options().set_lr(lr * scales[g]);
    Batch b = loader.next();
    SSLAB_CHECK(b.has(task.label), "sslab.finetune: the training samples have no '", task.label, "'");
    if (!device.is_cpu()) b = b.to(device);
    torch::Tensor logits = head->forward(encoder->embed(b));
    torch::Tensor y = b.at(task.label);
    torch::Tensor loss = task.multilabel
                             ? F::binary_cross_entropy_with_logits(logits, y.to(logits.scalar_type()))
                             : F::cross_entropy(logits, y);
    const double loss_value = loss.item<double>();
    SSLAB_CHECK(std::isfinite(loss_value), "sslab.finetune: the loss is ", loss_value, " at step ", step + 1,
                "; lower eval.finetune.lr");
    opt.zero_grad();
    loss.backward();
    if (s.grad_clip > 0) torch::nn::utils::clip_grad_norm_(all_params, s.grad_clip);
    opt.step();
    ++step;
    if (progress) progress(step, loss_value);
    const bool check = step % every == 0 || step == steps;
    if (check && !subset.val.empty()) {
      const double v = score(*encoder, head, *val_data, 0, task, s.test_batch_size, device);
      // A tie keeps the later (longer trained) weights but is no improvement.
      const bool better = v > best_val;
      if (v >= best_val) {
        best_val = v;
        t.best_step = step;
        best = snapshot(*encoder, *head);
      }
      if (better) {
        bad = 0;
      } else if (s.patience > 0 && ++bad >= s.patience) {
        break;
      }
    }
  }
  t.steps = step;
  if (!best.empty()) {
    restore(*encoder, *head, best);
    t.val = best_val;
  } else {
    t.best_step = step;
    t.val = std::nan("");
  }
  t.test = score(*encoder, head, *task.test, task.test_limit, task, s.test_batch_size, device);
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return t;
}

std::string fraction_name(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g%%", fraction * 100.0);
  return buf;
}

// ---------------------------------------------------------------------------
// sslab.finetune

struct FinetuneEvaluator::Options {
  std::string encoder;
  std::string label = "label";
  std::string name = "finetune";
  std::vector<double> fractions = {0.01, 0.1, 1.0};
  int64_t seeds = 3;
  double val_fraction = 0.1;
  bool scratch = true;
  bool linear_probe = true;
  bool augment = true;
  int64_t train_limit = 0, test_limit = 0;
  std::string progress = "auto";
  FinetuneSettings settings;
  ProbeOptions probe;
  // Filled by the factory.
  std::vector<std::shared_ptr<Transform>> transforms;
};

namespace {

Settings<FinetuneEvaluator::Options> finetune_settings() {
  using O = FinetuneEvaluator::Options;
  Settings<O> s;
  s.add("encoder", &O::encoder, "encoder to fine-tune (empty: the recipe's only one)");
  s.add("label", &O::label, "label key: class ids [] (accuracy) or multi-hot [K] (mAP)");
  s.add("name", &O::name, "result name prefix in eval.json");
  s.add("fractions", &O::fractions, "shares of the training labels, each a stratified subset, e.g. [0.01, 0.1, 1.0]");
  s.add("seeds", &O::seeds, "subsets (and head initialisations) per fraction; mean and std are reported").min(1);
  s.add("val_fraction", &O::val_fraction, "share of each labelled subset held out for early stopping").min(0).max(0.9);
  s.add("scratch", &O::scratch, "also train the same network from its random initialisation (the baseline)");
  s.add("linear_probe", &O::linear_probe, "also the frozen linear probe on the same labelled subset");
  s.add("augment", &O::augment,
        "augment training samples with the recipe's transforms of the encoder's input (its first view's)");
  s.add("train_limit", &O::train_limit, "training pool: its first N samples (0: all); fractions are of the pool")
      .min(0);
  s.add("test_limit", &O::test_limit, "score on the first N test samples (0: all)").min(0);
  s.add("progress", &O::progress, "progress display").choices({"auto", "bar", "plain", "none"});
  auto st = [](O& o) -> FinetuneSettings& { return o.settings; };
  s.add("epochs", [st](O& o) -> int64_t& { return st(o).epochs; }, "passes over the labelled training subset")
      .min(1);
  s.add("min_steps", [st](O& o) -> int64_t& { return st(o).min_steps; }, "at least this many updates").min(1);
  s.add("max_steps", [st](O& o) -> int64_t& { return st(o).max_steps; }, "at most this many updates").min(1);
  s.add("batch_size", [st](O& o) -> int64_t& { return st(o).batch_size; }, "samples per update").min(2);
  s.add("lr", [st](O& o) -> double& { return st(o).lr; }, "peak learning rate (AdamW)").greater_than(0);
  s.add("min_lr", [st](O& o) -> double& { return st(o).min_lr; }, "learning rate at the end of the cosine").min(0);
  s.add("weight_decay", [st](O& o) -> double& { return st(o).weight_decay; }, "AdamW weight decay (matrices only)")
      .min(0);
  s.add("warmup", [st](O& o) -> double& { return st(o).warmup; }, "share of the steps with a linear warmup")
      .min(0)
      .max(0.9);
  s.add("layer_decay", [st](O& o) -> double& { return st(o).layer_decay; },
        "layer-wise lr decay for transformer encoders (1: off; MAE uses 0.65-0.75)")
      .greater_than(0)
      .max(1);
  s.add("head", [st](O& o) -> std::string& { return st(o).head; }, "the fresh head on the pooled embedding")
      .choices({"linear", "mlp"});
  s.add("hidden", [st](O& o) -> int64_t& { return st(o).hidden; }, "hidden width of the mlp head").min(1);
  s.add("dropout", [st](O& o) -> double& { return st(o).dropout; }, "dropout before the head's output layer")
      .min(0)
      .max(0.9);
  s.add("grad_clip", [st](O& o) -> double& { return st(o).grad_clip; }, "gradient norm clip (0: off)").min(0);
  s.add("checks", [st](O& o) -> int64_t& { return st(o).checks; }, "validation checks over a fine-tune").min(1);
  s.add("patience", [st](O& o) -> int64_t& { return st(o).patience; },
        "stop after this many checks without a better validation score (0: never; the best weights are scored)")
      .min(0);
  s.add("workers", [st](O& o) -> int64_t& { return st(o).workers; }, "loader threads (0: load in this thread)")
      .min(0);
  s.add("probe_epochs", [](O& o) -> int64_t& { return o.probe.epochs; }, "frozen linear probe epochs").min(1);
  s.add("probe_lr", [](O& o) -> double& { return o.probe.lr; }, "frozen linear probe learning rate").greater_than(0);
  return s;
}

struct Stats {
  std::vector<double> v;
  double mean() const {
    double m = 0;
    for (double x : v) m += x;
    return v.empty() ? std::nan("") : m / static_cast<double>(v.size());
  }
  double std() const {
    if (v.size() < 2) return 0;
    double m = mean(), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1));
  }
};

std::string label_part(const std::string& label) {
  if (label == "label") return "";
  return "." + (label.rfind("label.", 0) == 0 ? label.substr(6) : label);
}

std::string log_mode(const BuildContext& ctx, const std::string& mode) {
  // "auto" follows the recipe's [log] progress (the tests set it to "none").
  if (mode != "auto") return mode;
  return ctx.recipe().at("log").validate(log_schema(), {}).get_string("progress");
}

// The recipe's augmentation of `input` for training samples: transforms of
// "<input>", else of its first view "<input>@0", else "<input>@*".
std::vector<std::shared_ptr<Transform>> recipe_transforms(BuildContext& ctx, const std::string& input) {
  RecipeNode transforms = ctx.recipe().at("transforms");
  if (!transforms.exists()) return {};
  for (const std::string& key : {input, input + "@0", input + "@*"}) {
    if (!transforms.has(key)) continue;
    std::vector<std::shared_ptr<Transform>> out;
    for (const auto& node : transforms.table_array(key)) {
      Config cfg = component_config(node, ComponentKind::Transform, ctx.registries());
      out.push_back(
          ctx.registries().transforms.at(node.required_string("type")).factory(cfg, ctx));
    }
    return out;
  }
  return {};
}

// The labels of the first `limit` samples of `data` under `key`.
torch::Tensor collect_labels(const Dataset& data, int64_t limit, const std::string& key, const std::string& who) {
  std::vector<torch::Tensor> ys;
  for_each_batch(data, limit, 256, [&](const Batch& b) {
    SSLAB_CHECK(b.has(key), who, ": the samples have no '", key, "'");
    ys.push_back(b.at(key));
  });
  SSLAB_CHECK(!ys.empty(), who, ": the training split is empty");
  return torch::cat(ys);
}

}  // namespace

FinetuneEvaluator::FinetuneEvaluator(std::shared_ptr<Options> options, std::string where)
    : o_(std::move(options)), where_(std::move(where)) {}

EvalResults FinetuneEvaluator::evaluate(BuildContext& ctx) {
  const Options& o = *o_;
  EvalResults results;
  const std::string who = where_;
  const std::string name = resolve_encoder(ctx, o.encoder, who);
  std::shared_ptr<Encoder> trained = ctx.encoder(name, who);
  FinetuneTask task;
  task.train = limit_dataset(ctx.dataset("train", who), o.train_limit);
  task.test = ctx.dataset("test", who);
  task.label = o.label;
  task.test_limit = o.test_limit;
  if (o.augment && !o.transforms.empty()) task.augment.push_back(Pipeline{trained->input(), o.transforms});
  const torch::Tensor pool_y = collect_labels(*task.train, 0, o.label, who);
  task.multilabel = pool_y.dim() == 2;
  task.classes = task.multilabel ? pool_y.size(1)
                 : (o.label == "label" && task.train->num_classes() > 0) ? task.train->num_classes()
                                                                         : pool_y.max().item<int64_t>() + 1;

  // The frozen features for the linear probe on the same subsets.
  Features probe_train, probe_test;
  if (o.linear_probe) {
    ProbeTarget target(ctx, name, false, who);
    probe_train = embed_features(*task.train, 0, o.settings.test_batch_size, ctx.device(), target.features(),
                                 {o.label}, who);
    probe_test = embed_features(*task.test, o.test_limit, o.settings.test_batch_size, ctx.device(),
                                target.features(), {o.label}, who);
  }

  // Every subset first: the progress bar knows the total.
  struct Plan {
    double fraction;
    int64_t seed_index;
    LabelSubset subset;
    int64_t steps;
  };
  std::vector<Plan> plans;
  int64_t total = 0;
  const int arms = o.scratch ? 2 : 1;
  for (double f : o.fractions) {
    for (int64_t s = 0; s < o.seeds; ++s) {
      const uint64_t fbits = static_cast<uint64_t>(std::llround(f * 1e9));
      Plan p{f, s, stratified_subset(pool_y, f, o.val_fraction, mix_seed(ctx.seed(), static_cast<uint64_t>(s), fbits)),
             0};
      p.steps = finetune_steps(o.settings, static_cast<int64_t>(p.subset.train.size()));
      total += p.steps * arms;
      plans.push_back(std::move(p));
    }
  }
  std::string mode = log_mode(ctx, o.progress);
  if (mode == "auto") mode = isatty(STDERR_FILENO) ? "bar" : "plain";
  const int64_t update_every = mode == "bar" ? 10 : 100;  // plain: a line per 100 steps
  Progress bar(mode, total, 0);
  int64_t done = 0;
  auto report = [&](const FinetuneTrace& t) {
    if (mode != "none") {
      bar.finish();
      char buf[256];
      std::snprintf(buf, sizeof(buf),
                    "%s %s seed %ld %-10s: %s %.4f (validation %.4f, best step %ld of %ld, %ld labels, %.0f s)\n",
                    o.name.c_str(), fraction_name(t.fraction).c_str(), static_cast<long>(t.seed_index),
                    t.arm.c_str(), task.multilabel ? "test mAP" : "test accuracy", t.test, t.val,
                    static_cast<long>(t.best_step), static_cast<long>(t.steps),
                    static_cast<long>(t.subset.train.size()), t.seconds);
      std::cerr << buf;
    }
    if (trace_) trace_(t);
  };

  const std::string metric = task.multilabel ? "map" : "accuracy";
  std::map<double, Stats> pre, scratch, probe, gain, labels, val_labels, steps, best, secs;
  for (const Plan& p : plans) {
    const uint64_t s = static_cast<uint64_t>(p.seed_index);
    const uint64_t head_seed = mix_seed(ctx.seed(), s, 0x4ead), order_seed = mix_seed(ctx.seed(), s, 0x0dde);
    auto run_arm = [&](const std::string& arm, std::shared_ptr<Encoder> enc) {
      const int64_t base = done;
      FinetuneTrace t = finetune_encoder(enc, task, p.subset, o.settings, head_seed, order_seed, ctx.device(),
                                         [&](int64_t step, double loss) {
                                           if (step % update_every == 0) bar.update(base + step, {{"loss", loss}});
                                         });
      done += p.steps;
      t.arm = arm;
      t.fraction = p.fraction;
      t.seed_index = p.seed_index;
      report(t);
      return t;
    };
    auto pretrained = ctx.fresh_encoder(name, ctx.seed(), who);
    copy_module_state(*trained, *pretrained);
    FinetuneTrace a = run_arm("pretrained", pretrained);
    pretrained.reset();
    pre[p.fraction].v.push_back(a.test);
    labels[p.fraction].v.push_back(static_cast<double>(p.subset.train.size()));
    val_labels[p.fraction].v.push_back(static_cast<double>(p.subset.val.size()));
    steps[p.fraction].v.push_back(static_cast<double>(a.steps));
    best[p.fraction].v.push_back(static_cast<double>(a.best_step));
    secs[p.fraction].v.push_back(a.seconds);
    if (o.scratch) {
      FinetuneTrace b = run_arm("scratch", ctx.fresh_encoder(name, mix_seed(ctx.seed() + 7919, s, 0x5c), who));
      scratch[p.fraction].v.push_back(b.test);
      gain[p.fraction].v.push_back(a.test - b.test);
    }
    if (o.linear_probe) {
      torch::Tensor idx = torch::tensor(p.subset.train);
      const torch::Tensor& x = probe_train.at("encoder");
      const torch::Tensor& y = probe_train.label(o.label);
      ProbeOptions po = o.probe;
      po.seed = mix_seed(ctx.seed(), s, 0x9b);
      double v;
      if (task.multilabel) {
        torch::Tensor sc = multilabel_probe_scores(x.index_select(0, idx), y.index_select(0, idx).to(torch::kFloat32),
                                                   probe_test.at("encoder"), po);
        v = mean_average_precision(sc, probe_test.label(o.label));
      } else {
        v = linear_probe_accuracy(x.index_select(0, idx), y.index_select(0, idx), probe_test.at("encoder"),
                                  probe_test.label(o.label), task.classes, po);
      }
      probe[p.fraction].v.push_back(v);
    }
  }
  bar.finish();
  for (double f : o.fractions) {
    const std::string prefix = o.name + label_part(o.label) + "." + fraction_name(f);
    auto fill = [&](const std::string& key, const Stats& st) {
      auto& r = results[key];
      r[metric] = st.mean();
      r[metric + "_std"] = st.std();
      r["seeds"] = static_cast<double>(st.v.size());
      r["train_labels"] = labels[f].mean();
      return &r;
    };
    auto* r = fill(prefix + ".pretrained", pre[f]);
    (*r)["val_labels"] = val_labels[f].mean();
    (*r)["steps"] = steps[f].mean();
    (*r)["best_step"] = best[f].mean();
    (*r)["seconds"] = secs[f].mean();
    if (o.scratch) {
      fill(prefix + ".scratch", scratch[f]);
      (*r)["gain_over_scratch"] = gain[f].mean();
      (*r)["gain_over_scratch_std"] = gain[f].std();
    }
    if (o.linear_probe) fill(prefix + ".linear_probe", probe[f]);
  }
  if (mode != "none") {
    // The headline table: pretrained beside scratch and the frozen probe.
    std::ostringstream out;
    out << o.name << label_part(o.label) << ": test " << metric << ", mean +- std over " << o.seeds << " seed(s)\n";
    char buf[200];
    std::snprintf(buf, sizeof(buf), "  %-8s %8s  %-17s %-17s %-17s %s\n", "labels", "samples", "pretrained", "scratch",
                  "gain", "frozen probe");
    out << buf;
    auto cell = [](const Stats& st) {
      char c[40];
      if (st.v.empty()) return std::string("-");
      std::snprintf(c, sizeof(c), "%.4f +- %.4f", st.mean(), st.std());
      return std::string(c);
    };
    for (double f : o.fractions) {
      std::snprintf(buf, sizeof(buf), "  %-8s %8.0f  %-17s %-17s %-17s %s\n", fraction_name(f).c_str(),
                    labels[f].mean(), cell(pre[f]).c_str(), cell(scratch[f]).c_str(), cell(gain[f]).c_str(),
                    cell(probe[f]).c_str());
      out << buf;
    }
    std::cerr << out.str();
  }
  return results;
}

Schema finetune_schema() { return finetune_settings().schema(); }

std::shared_ptr<Evaluator> make_finetune(const Config& cfg, BuildContext& ctx) {
  static const Settings<FinetuneEvaluator::Options> settings = finetune_settings();
  auto o = std::make_shared<FinetuneEvaluator::Options>(settings.read(cfg));
  const std::string where = cfg.locate("encoder");
  SSLAB_CHECK(!o->fractions.empty(), cfg.locate("fractions"), ": give at least one fraction");
  for (size_t i = 0; i < o->fractions.size(); ++i) {
    const double f = o->fractions[i];
    SSLAB_CHECK(f > 0 && f <= 1, cfg.locate("fractions"), ": each fraction must be in (0, 1], got ", f);
    for (size_t j = 0; j < i; ++j)
      SSLAB_CHECK(o->fractions[j] != f, cfg.locate("fractions"), ": the fraction ", f, " is given twice");
  }
  SSLAB_CHECK(o->settings.min_steps <= o->settings.max_steps, cfg.locate("min_steps"), ": min_steps (",
              o->settings.min_steps, ") must be <= max_steps (", o->settings.max_steps, ")");
  const std::string name = resolve_encoder(ctx, o->encoder, where);
  if (o->settings.layer_decay < 1.0) {
    // Refuse a CNN with layer_decay before training rather than after it.
    torch::nn::Module no_head;
    finetune_groups(*ctx.encoder(name, where), no_head, 0, o->settings.layer_decay, cfg.locate("layer_decay"));
  }
  if (o->augment) o->transforms = recipe_transforms(ctx, ctx.encoder(name)->input());
  return std::make_shared<FinetuneEvaluator>(o, where);
}

// ---------------------------------------------------------------------------
// sslab.fewshot

namespace {

struct FewShotEvalOptions {
  std::string encoder;
  std::string label = "label";
  std::string name = "fewshot";
  std::vector<int64_t> shots = {1, 5, 10};
  int64_t ways = 0;
  int64_t queries = 15;
  int64_t episodes = 200;
  int64_t train_limit = 0, test_limit = 0, batch_size = 256;
  bool random_encoder = true;
  bool raw_baseline = false;
};

Settings<FewShotEvalOptions> fewshot_settings() {
  using O = FewShotEvalOptions;
  Settings<O> s;
  s.add("encoder", &O::encoder, "encoder to evaluate (empty: the recipe's only one)");
  s.add("label", &O::label, "single-label key of class ids");
  s.add("name", &O::name, "result name prefix in eval.json");
  s.add("shots", &O::shots, "support samples per class, one result each, e.g. [1, 5, 10]");
  s.add("ways", &O::ways, "classes per episode (0: every class)").min(0);
  s.add("queries", &O::queries, "query samples per class and episode (from the test split)").min(1);
  s.add("episodes", &O::episodes, "episodes per shot count (the 95% interval narrows with more)").min(1);
  s.add("train_limit", &O::train_limit, "support pool: the first N training samples (0: all)").min(0);
  s.add("test_limit", &O::test_limit, "query pool: the first N test samples (0: all)").min(0);
  s.add("batch_size", &O::batch_size, "samples per embedding batch").min(1);
  s.add("random_encoder", &O::random_encoder, "the same episodes on the random-encoder twin (the baseline)");
  s.add("raw_baseline", &O::raw_baseline, "the same episodes on the flattened raw input");
  return s;
}

class FewShot : public Evaluator {
 public:
  FewShot(FewShotEvalOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}
  EvalResults evaluate(BuildContext& ctx) override {
    EvalResults results;
    ProbeSettings ps;
    ps.train_limit = o_.train_limit;
    ps.test_limit = o_.test_limit;
    ps.batch_size = o_.batch_size;
    ProbeTarget target(ctx, o_.encoder, o_.random_encoder, where_);
    std::vector<FeatureSpec> specs = target.features();
    if (o_.raw_baseline) {
      const std::string key = target.input();
      specs.push_back({"raw", [key](const Batch& b) { return b.at(key).flatten(1).to(torch::kFloat32); }, false});
    }
    const SplitFeatures f = embed_splits(ctx, ps, specs, {o_.label}, where_);
    SSLAB_CHECK(f.train.label(o_.label).dim() == 1, where_, ": few-shot needs single-label class ids; '", o_.label,
                "' is multi-hot");
    for (int64_t k : o_.shots) {
      const std::string prefix = o_.name + label_part(o_.label) + ".k" + std::to_string(k);
      for (const auto& [feature, suffix] :
           std::vector<std::pair<std::string, std::string>>{{"encoder", ""}, {"random", ".random_encoder"}, {"raw", ".raw"}}) {
        if (!f.train.x.count(feature)) continue;
        FewShotOptions fo;
        fo.shots = k;
        fo.ways = o_.ways;
        fo.queries = o_.queries;
        fo.episodes = o_.episodes;
        fo.seed = mix_seed(ctx.seed(), static_cast<uint64_t>(k), 0xfe);  // the same episodes for every feature
        FewShotResult r = few_shot_accuracy(f.train.at(feature), f.train.label(o_.label), f.test.at(feature),
                                            f.test.label(o_.label), fo);
        auto& m = results[prefix + suffix];
        m["prototype_accuracy"] = r.prototype;
        m["prototype_ci95"] = r.prototype_ci95;
        m["logistic_accuracy"] = r.logistic;
        m["logistic_ci95"] = r.logistic_ci95;
        m["episodes"] = static_cast<double>(r.episodes);
        m["ways"] = static_cast<double>(r.ways);
      }
    }
    return results;
  }

 private:
  FewShotEvalOptions o_;
  std::string where_;
};

}  // namespace

Schema fewshot_schema() { return fewshot_settings().schema(); }

std::shared_ptr<Evaluator> make_fewshot(const Config& cfg, BuildContext& ctx) {
  static const Settings<FewShotEvalOptions> settings = fewshot_settings();
  FewShotEvalOptions o = settings.read(cfg);
  SSLAB_CHECK(!o.shots.empty(), cfg.locate("shots"), ": give at least one shot count");
  for (int64_t k : o.shots) SSLAB_CHECK(k >= 1, cfg.locate("shots"), ": each shot count must be >= 1, got ", k);
  resolve_encoder(ctx, o.encoder, cfg.locate("encoder"));
  return std::make_shared<FewShot>(std::move(o), cfg.locate("encoder"));
}

}  // namespace sslab
