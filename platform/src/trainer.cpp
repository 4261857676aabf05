#include "sslab/host/trainer.h"
#include "sslab/host/memory.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "sslab/host/distributed.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_log.h"

namespace fs = std::filesystem;

namespace sslab {

int set_threads(int64_t threads) {
  int n = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return n;
}

static std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  SSLAB_CHECK(in, "cannot read '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

static void write_text_atomic(const fs::path& p, const std::string& text) {
  fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    SSLAB_CHECK(out, "cannot write '", tmp.string(), "'");
    out << text;
  }
  fs::rename(tmp, p);
}

Recipe load_run_recipe(const std::string& run_dir) {
  fs::path dir(run_dir);
  SSLAB_CHECK(fs::is_directory(dir), "run folder '", run_dir, "' does not exist");
  SSLAB_CHECK(fs::exists(dir / "recipe.toml"), run_dir, ": not a run folder (no recipe.toml)");
  // Relative paths in the recipe resolve against the folder of the original
  // recipe file, recorded in `source`.
  std::string source = fs::exists(dir / "source") ? read_text(dir / "source") : (dir / "recipe.toml").string();
  while (!source.empty() && (source.back() == '\n' || source.back() == '\r')) source.pop_back();
  return Recipe::parse_string(read_text(dir / "recipe.toml"), source);
}

std::string latest_checkpoint(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::string best;
  if (!fs::is_directory(dir)) return best;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string f = e.path().filename().string();
    if (f.rfind("step-", 0) == 0 && f.size() > 8 && f.substr(f.size() - 3) == ".pt" && f > fs::path(best).filename().string())
      best = e.path().string();
  }
  return best;
}

// ---------------------------------------------------------------- checkpoint I/O

namespace {

torch::Tensor scalar(int64_t v) { return torch::tensor({v}, torch::kInt64); }
int64_t scalar_of(torch::serialize::InputArchive& in, const std::string& key) {
  torch::Tensor t;
  in.read(key, t);
  return t.item<int64_t>();
}
torch::Tensor bytes_tensor(const std::string& s) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}
std::string tensor_bytes(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
}

void save_module(torch::serialize::OutputArchive& out, const std::string& key, torch::nn::Module& m) {
  torch::serialize::OutputArchive sub;
  m.save(sub);
  out.write(key, sub);
}

void load_module(torch::serialize::InputArchive& in, const std::string& key, torch::nn::Module& m,
                 const std::string& file) {
  torch::serialize::InputArchive sub;
  SSLAB_CHECK(in.try_read(key, sub), file, ": checkpoint has no '", key, "' (does it belong to this recipe?)");
  // Module::load replaces tensors without checking their shapes: compare
  // every parameter and buffer with the shape the recipe's model expects.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : m.named_parameters(true)) expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : m.named_buffers(true)) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    m.load(sub);
  } catch (const c10::Error& e) {
    throw UserError(str(file, ": checkpoint '", key, "' does not fit the recipe's model: ", e.what_without_backtrace()));
  }
  auto params = m.named_parameters(true);
  auto buffers = m.named_buffers(true);
  for (const auto& [name, shape] : expected) {
    const torch::Tensor* t = params.find(name);
    if (!t) t = buffers.find(name);
    SSLAB_ASSERT(t, "tensor ", name, " vanished while loading");
    SSLAB_CHECK(t->sizes().vec() == shape, file, ": checkpoint '", key, "' does not fit the recipe's model: ", name,
                " is ", t->sizes(), " in the checkpoint but ", c10::IntArrayRef(shape), " in the model");
  }
}

// Tensors are mapped onto `device` as they are read: a checkpoint written on a
// GPU loads on the CPU and the other way round (Module::load would otherwise
// keep the saved device).
torch::serialize::InputArchive open_checkpoint(const std::string& file, const torch::Device& device) {
  torch::serialize::InputArchive in;
  try {
    in.load_from(file, device);
  } catch (const c10::Error& e) {
    throw UserError(str(file, ": not a readable sslab checkpoint (", e.what_without_backtrace(), ")"));
  }
  torch::Tensor v;
  SSLAB_CHECK(in.try_read("format_version", v), file, ": not an sslab checkpoint (no format_version)");
  int64_t version = v.item<int64_t>();
  SSLAB_CHECK(version <= kCheckpointFormat, file, ": checkpoint format ", version,
              " is newer than this sslab reads (", kCheckpointFormat, "); update sslab");
  return in;
}

// bf16 autocast on CUDA for the forward passes of one micro-batch.
class AutocastBf16 {
 public:
  explicit AutocastBf16(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastBf16() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  AutocastBf16(const AutocastBf16&) = delete;
  AutocastBf16& operator=(const AutocastBf16&) = delete;

 private:
  bool on_;
};

// Running means of metrics between two log lines.
struct Accumulator {
  // Per-key sums and counts: a metric logged only on some steps (the online
  // probe with train.probe_every > 1) is the mean over the steps that had it.
  std::map<std::string, double> sums;
  std::map<std::string, int64_t> counts;
  int64_t count = 0;
  void add(const std::map<std::string, double>& m) {
    for (const auto& [k, v] : m) {
      sums[k] += v;
      ++counts[k];
    }
    ++count;
  }
  std::map<std::string, double> means() const {
    std::map<std::string, double> out;
    for (const auto& [k, v] : sums) out[k] = v / std::max<int64_t>(counts.at(k), 1);
    return out;
  }
  void clear() {
    sums.clear();
    counts.clear();
    count = 0;
  }
  std::string serialize() const {
    std::ostringstream s;
    s.precision(17);
    s << count << "\n";
    for (const auto& [k, v] : sums) s << k << "\t" << v << "\t" << counts.at(k) << "\n";
    return s.str();
  }
  // Reads both "key<TAB>sum<TAB>count" lines and the older "key<TAB>sum"
  // (every key counted on every step) of checkpoints from before the counts.
  void deserialize(const std::string& text) {
    std::istringstream s(text);
    clear();
    s >> count;
    std::string line;
    std::getline(s, line);
    while (std::getline(s, line)) {
      auto tab = line.find('\t');
      if (tab == std::string::npos) continue;
      std::string key = line.substr(0, tab);
      auto tab2 = line.find('\t', tab + 1);
      sums[key] = std::stod(line.substr(tab + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab - 1));
      counts[key] = tab2 == std::string::npos ? count : std::stoll(line.substr(tab2 + 1));
    }
  }
};

// The online linear probe of one encoder: a linear head on detached embeddings.
struct Probe {
  std::string encoder;
  torch::nn::Linear head{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

class Run {
 public:
  Run(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir);
  TrainResult go();

 private:
  void setup_dir(const std::string& resume_dir);
  void save_checkpoint(int64_t step);
  void restore(const std::string& file);
  void log(int64_t step, std::map<std::string, double> m, double elapsed, int64_t samples);
  std::map<std::string, double> reduced_means();
  void broadcast_state();
  double lr_at(int64_t step) const;

  Recipe recipe_;
  TrainOptions options_;
  PluginHost host_;
  std::shared_ptr<Communicator> comm_;  // data-parallel runs only
  std::unique_ptr<GradientSync> sync_;
  std::unique_ptr<Experiment> exp_;
  Config train_, log_cfg_, ckpt_cfg_, eval_cfg_;
  fs::path dir_;
  std::unique_ptr<Loader> loader_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<Probe> probes_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  Accumulator acc_;
  int64_t step_ = 0, total_steps_ = 0, accumulate_ = 1, probe_every_ = 1;
  bool resumed_ = false, bf16_ = false;
};

Config section(const Recipe& r, const std::string& name, const Schema& s) { return r.at(name).validate(s, {}); }

Run::Run(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir)
    : recipe_(recipe),
      options_(options),
      train_(section(recipe, "train", train_schema())),
      log_cfg_(section(recipe, "log", log_schema())),
      ckpt_cfg_(section(recipe, "checkpoint", checkpoint_schema())),
      eval_cfg_(section(recipe, "eval", eval_schema())) {
  set_threads(train_.get_int("threads"));
  Config dist = section(recipe, "distributed", distributed_schema());
  DistEnv env = read_dist_env();
  bool cuda = train_.get_string("device") == "cuda";
  bf16_ = train_.get_string("precision") == "bf16";
  SSLAB_CHECK(!bf16_ || cuda, train_.locate("precision"), " is \"bf16\": bf16 autocast needs train.device = \"cuda\"");
  if (env.world_size > 1) {
    comm_ = connect(env, dist.get_string("backend"), std::chrono::milliseconds(dist.get_int("timeout_s") * 1000),
                    cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank))
                         : torch::Device(torch::kCPU));
  }
  exp_ = std::make_unique<Experiment>(recipe_, host_, comm_, env.local_rank);
  BuildContext& ctx = exp_->context();
  SSLAB_CHECK(!exp_->objectives().empty(), recipe_.file(), ": the recipe has no [[objectives]] to train");
  auto train_data = ctx.dataset("train", recipe_.file() + ": [data.train]");

  accumulate_ = train_.get_int("accumulate");
  probe_every_ = train_.get_int("probe_every");
  int64_t batch = train_.get_int("batch_size");
  SSLAB_CHECK(batch % accumulate_ == 0, train_.locate("accumulate"), " (", accumulate_,
              ") must divide train.batch_size (", batch, ")");
  SSLAB_CHECK(batch % (accumulate_ * ctx.world_size()) == 0, train_.locate("batch_size"), " (", batch,
              ", the global batch) must be divisible by accumulate x world size (", accumulate_, " x ", ctx.world_size(),
              ")");
  LoaderOptions lo;
  lo.batch_size = batch / accumulate_ / ctx.world_size();
  lo.pin_memory = ctx.device().is_cuda();
  lo.views = exp_->views();
  lo.workers = static_cast<int>(train_.get_int("workers"));
  lo.prefetch = static_cast<int>(train_.get_int("prefetch"));
  lo.seed = ctx.seed();
  lo.rank = ctx.rank();
  lo.world_size = ctx.world_size();
  lo.skip_bad_samples = exp_->skips_bad_samples("train");
  loader_ = std::make_unique<Loader>(train_data, lo, exp_->pipelines());
  int64_t steps = train_.get_int("steps");
  total_steps_ = steps > 0 ? steps
                           : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(train_.get_float("epochs") *
                                                                                 loader_->batches_per_epoch() /
                                                                                 accumulate_)));

  // Parameter groups: no weight decay on biases and norm weights (dim < 2).
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : exp_->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  double lr = train_.get_float("lr"), wd = train_.get_float("weight_decay");
  if (train_.get_string("optimizer") == "adamw") {
    auto betas = train_.get_floats("betas");
    auto opts = [&](double w) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(lr).betas({betas[0], betas[1]}).weight_decay(w));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, opts(wd));
    groups.emplace_back(no_decay, opts(0.0));
    optimizer_ = std::make_unique<torch::optim::AdamW>(groups, *opts(wd));
  } else {
    auto opts = [&](double w) {
      return std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(lr).momentum(train_.get_float("momentum")).weight_decay(w));
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, opts(wd));
    groups.emplace_back(no_decay, opts(0.0));
    optimizer_ = std::make_unique<torch::optim::SGD>(groups, *opts(wd));
  }

  if (train_.get_bool("probe") && train_data->num_classes() > 0) {
    for (const auto& name : ctx.encoder_names()) {
      auto enc = ctx.encoder(name);
      Probe p;
      p.encoder = name;
      p.head = torch::nn::Linear(enc->embed_dim(), train_data->num_classes());
      p.head->to(ctx.device());
      p.optimizer = std::make_unique<torch::optim::AdamW>(
          p.head->parameters(), torch::optim::AdamWOptions(train_.get_float("probe_lr")).weight_decay(0.0));
      probes_.push_back(std::move(p));
    }
  }
  setup_dir(resume_dir);
  if (comm_) {
    broadcast_state();
    sync_ = std::make_unique<GradientSync>(comm_, exp_->parameters(),
                                           static_cast<int64_t>(dist.get_float("bucket_mb") * 1024 * 1024),
                                           dist.get_bool("overlap"));
  }
}

// Rank 0's weights, buffers, EMA targets and probes everywhere (fresh runs
// build the same weights from the seed anyway; this makes it a guarantee).
void Run::broadcast_state() {
  std::vector<torch::Tensor> tensors;
  auto add = [&](torch::nn::Module& m) {
    for (auto& p : m.parameters(true)) tensors.push_back(p);
    for (auto& b : m.buffers(true)) tensors.push_back(b);
  };
  for (const auto& [name, m] : exp_->modules()) add(*m);
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) add(*t.target);
  for (auto& p : probes_) add(*p.head);
  torch::NoGradGuard no_grad;
  comm_->broadcast(tensors, 0);
}

// The accumulated metrics, averaged over ranks (skipped samples summed).
std::map<std::string, double> Run::reduced_means() {
  std::map<std::string, double> m = acc_.means();
  if (!comm_) {
    if (loader_->skipped() > 0) m["skipped_samples"] = static_cast<double>(loader_->skipped());
    return m;
  }
  m["skipped_samples"] = static_cast<double>(loader_->skipped());
  m = average_metrics(*comm_, m);
  m["skipped_samples"] *= comm_->world_size();
  if (m["skipped_samples"] == 0) m.erase("skipped_samples");
  return m;
}

void Run::setup_dir(const std::string& resume_dir) {
  bool rank0 = exp_->context().rank() == 0;
  if (!resume_dir.empty()) {
    dir_ = resume_dir;
    std::string ckpt = latest_checkpoint(resume_dir);
    if (!ckpt.empty()) {
      restore(ckpt);
      resumed_ = true;
    }
  } else if (!options_.out.empty()) {
    dir_ = options_.out;
    SSLAB_CHECK(latest_checkpoint(dir_.string()).empty(), "run folder '", dir_.string(),
                "' already holds checkpoints; continue it with 'sslab train --resume ", dir_.string(),
                "' or choose another --out");
  } else {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
    dir_ = fs::path("runs") / (recipe_.name() + "-" + stamp);
  }
  if (!rank0) return;
  fs::create_directories(dir_ / "checkpoints");
  if (!resumed_) {
    write_text_atomic(dir_ / "recipe.toml", recipe_.to_toml());
    write_text_atomic(dir_ / "source", fs::absolute(recipe_.file()).lexically_normal().string() + "\n");
    std::ofstream(dir_ / "metrics.jsonl", std::ios::trunc);
  } else {
    // Drop log lines written after the checkpoint we resume from.
    std::istringstream lines(read_text(dir_ / "metrics.jsonl"));
    std::string line, kept;
    while (std::getline(lines, line)) {
      auto pos = line.find("\"step\": ");
      if (pos != std::string::npos && std::stoll(line.substr(pos + 8)) > step_) continue;
      kept += line + "\n";
    }
    write_text_atomic(dir_ / "metrics.jsonl", kept);
  }
  metrics_ = std::make_unique<MetricsWriter>((dir_ / "metrics.jsonl").string());
  if (log_cfg_.get_bool("tensorboard")) tb_ = std::make_unique<TensorBoardWriter>((dir_ / "tensorboard").string());
}

double Run::lr_at(int64_t step) const {
  // step is 1-based: the lr used for the step-th optimizer update.
  double lr = train_.get_float("lr"), min_lr = train_.get_float("min_lr");
  int64_t warmup = train_.get_int("warmup_steps");
  if (warmup > 0 && step <= warmup) return lr * static_cast<double>(step) / warmup;
  if (train_.get_string("schedule") == "constant") return lr;
  double progress = static_cast<double>(step - warmup) / std::max<int64_t>(1, total_steps_ - warmup);
  progress = std::clamp(progress, 0.0, 1.0);
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

void Run::save_checkpoint(int64_t step) {
  if (exp_->context().rank() != 0) return;
  torch::serialize::OutputArchive out;
  out.write("format_version", scalar(kCheckpointFormat));
  out.write("step", scalar(step));
  out.write("loader_epoch", scalar(loader_->epoch()));
  out.write("loader_batch", scalar(loader_->batch_in_epoch()));
  out.write("recipe", bytes_tensor(recipe_.to_toml()));
  out.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  out.write("log_accumulator", bytes_tensor(acc_.serialize()));
  for (const auto& [name, m] : exp_->modules()) save_module(out, "model/" + name, *m);
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) save_module(out, "ema/" + name, *t.target);
  torch::serialize::OutputArchive opt;
  optimizer_->save(opt);
  out.write("optimizer", opt);
  for (auto& p : probes_) {
    save_module(out, "probe/" + p.encoder, *p.head);
    torch::serialize::OutputArchive po;
    p.optimizer->save(po);
    out.write("probe_optimizer/" + p.encoder, po);
  }
  char name[32];
  std::snprintf(name, sizeof(name), "step-%09ld.pt", static_cast<long>(step));
  fs::path final_path = dir_ / "checkpoints" / name;
  fs::path tmp = final_path.string() + ".tmp";
  out.save_to(tmp.string());
  fs::rename(tmp, final_path);  // atomic: a reader sees the old or the new file
  // Keep the newest `keep` checkpoints.
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dir_ / "checkpoints"))
    if (e.path().extension() == ".pt") all.push_back(e.path());
  std::sort(all.begin(), all.end());
  int64_t keep = ckpt_cfg_.get_int("keep");
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove(all[i]);
}

void Run::restore(const std::string& file) {
  auto in = open_checkpoint(file, exp_->context().device());
  step_ = scalar_of(in, "step");
  int64_t epoch = scalar_of(in, "loader_epoch"), batch = scalar_of(in, "loader_batch");
  for (const auto& [name, m] : exp_->modules()) load_module(in, "model/" + name, *m, file);
  // EMA targets requested while building are restored; others are recreated by objectives.
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) load_module(in, "ema/" + name, *t.target, file);
  torch::serialize::InputArchive opt;
  SSLAB_CHECK(in.try_read("optimizer", opt), file, ": checkpoint has no optimizer state");
  optimizer_->load(opt);
  for (auto& p : probes_) {
    load_module(in, "probe/" + p.encoder, *p.head, file);
    torch::serialize::InputArchive po;
    if (in.try_read("probe_optimizer/" + p.encoder, po)) p.optimizer->load(po);
  }
  torch::Tensor rng, accum;
  in.read("rng", rng);
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // shares the default generator
  gen.set_state(rng);
  // The checkpoint holds rank 0's generator; other ranks draw their own stream.
  int rank = exp_->context().rank();
  if (rank > 0)
    torch::manual_seed(exp_->context().seed() * 1000003ULL + static_cast<uint64_t>(rank) + static_cast<uint64_t>(step_) * 7919ULL);
  if (in.try_read("log_accumulator", accum)) acc_.deserialize(tensor_bytes(accum));
  loader_->seek(epoch, batch);
}

void Run::log(int64_t step, std::map<std::string, double> m, double elapsed, int64_t samples) {
  if (exp_->context().rank() != 0) return;
  m["lr"] = lr_at(step);
  m["samples_per_s"] = samples * exp_->context().world_size() / std::max(elapsed, 1e-9);
  m["epoch"] = static_cast<double>(loader_->epoch()) + static_cast<double>(loader_->batch_in_epoch()) /
                                                           loader_->batches_per_epoch();
  metrics_->write(step, m);
  if (tb_) {
    for (const auto& [k, v] : m) tb_->add_scalar(k, v, step);
    tb_->flush();
  }
}

TrainResult Run::go() {
  BuildContext& ctx = exp_->context();
  bool rank0 = ctx.rank() == 0;
  if (rank0) std::cout << "run folder: " << dir_.string() << (resumed_ ? " (resumed at step " + std::to_string(step_) + ")" : "") << std::endl;
  Progress progress(rank0 ? log_cfg_.get_string("progress") : "none", total_steps_, step_);
  double clip = train_.get_float("grad_clip");
  int64_t log_every = log_cfg_.get_int("every_steps"), ckpt_every = ckpt_cfg_.get_int("every_steps");
  int64_t release_every = train_.get_int("release_memory_every");
  std::vector<torch::Tensor> params = exp_->parameters();
  for (const auto& [n, m] : exp_->modules()) m->train();
  double last_loss = 0;
  auto t_log = std::chrono::steady_clock::now();
  int64_t samples_since_log = 0;

  while (step_ < total_steps_) {
    int64_t step = step_ + 1;
    double lr = lr_at(step);
    for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
    optimizer_->zero_grad();
    std::map<std::string, double> metrics;
    double step_loss = 0;
    for (int64_t micro = 0; micro < accumulate_; ++micro) {
      Batch batch = loader_->next();
      if (!ctx.device().is_cpu()) batch = batch.to(ctx.device(), true);
      samples_since_log += batch.size;
      bool last_micro = micro == accumulate_ - 1;
      torch::Tensor total;
      {
        AutocastBf16 autocast(bf16_);  // forward passes only; backward follows the forward dtypes
        for (auto& slot : exp_->objectives()) {
          ObjectiveOutput out = slot.objective->compute(batch);
          double value = out.loss.item<double>();
          if (!std::isfinite(value)) {
            throw UserError(str("step ", step, ": objective '", slot.name, "' gave a ", std::isnan(value) ? "NaN" : "infinite",
                                " loss; the run stops (lower train.lr, set train.grad_clip, or check the data)"));
          }
          torch::Tensor weighted = out.loss * (slot.weight / accumulate_);
          total = total.defined() ? total + weighted : weighted;
          step_loss += slot.weight * value / accumulate_;  // the weighted total, without another sync
          metrics[slot.name + "/loss"] += value / accumulate_;
          for (const auto& [k, v] : out.metrics) metrics[slot.name + "/" + k] += v / accumulate_;
        }
      }
      if (sync_ && last_micro) sync_->arm();  // reduce the accumulated gradients during this backward
      total.backward();
      if (sync_ && last_micro) sync_->finish();
      // Online probes: linear heads on detached embeddings.
      if (!probes_.empty() && batch.has("label") && (step - 1) % probe_every_ == 0) {
        for (auto& p : probes_) {
          torch::Tensor emb;
          {
            torch::NoGradGuard no_grad;
            emb = ctx.encoder(p.encoder)->embed(batch);
          }
          torch::Tensor logits = p.head(emb.detach());
          torch::Tensor labels = batch.at("label");
          torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
          p.optimizer->zero_grad();
          loss.backward();
          if (comm_) {  // the probes stay identical on every rank
            std::vector<torch::Tensor> grads;
            for (auto& q : p.head->parameters()) grads.push_back(q.mutable_grad());
            comm_->all_reduce_sum(grads);
            for (auto& g : grads) g.div_(comm_->world_size());
          }
          p.optimizer->step();
          std::string key = probes_.size() == 1 ? "probe_acc" : "probe_acc/" + p.encoder;
          metrics[key] += (logits.argmax(1) == labels).to(torch::kFloat64).mean().item<double>() / accumulate_;
        }
      }
    }
    if (clip > 0) metrics["grad_norm"] = torch::nn::utils::clip_grad_norm_(params, clip);
    optimizer_->step();
    for (auto& [name, t] : HostAccess::ema_targets(ctx)) {
      if (t.options.schedule == "cosine")
        t.momentum = 1 - (1 - t.options.momentum) * (std::cos(M_PI * static_cast<double>(step) / total_steps_) + 1) / 2;
    }
    update_ema_targets(ctx);
    metrics["loss"] = step_loss;
    last_loss = step_loss;
    acc_.add(metrics);
    step_ = step;
    if (step % log_every == 0 || step == total_steps_) {
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      std::map<std::string, double> shown = reduced_means();
      acc_.clear();
      log(step, shown, elapsed, samples_since_log);
      progress.update(step, shown);
      t_log = std::chrono::steady_clock::now();
      samples_since_log = 0;
    }
    if ((ckpt_every > 0 && step % ckpt_every == 0) || step == total_steps_) save_checkpoint(step);
    if (release_every > 0 && step % release_every == 0) release_free_memory();
  }
  progress.finish();
  if (comm_) comm_->barrier();  // every rank is done with collectives; rank 0 evaluates alone
  TrainResult result{dir_.string(), step_, last_loss};
  if (options_.evaluate && eval_cfg_.get_bool("enabled") && recipe_.root().has("eval") && rank0) {
    for (const auto& [n, m] : exp_->modules()) m->eval();
    EvalResults r = evaluate(*exp_, dir_.string());
    std::cout << eval_table(r);
  }
  return result;
}

}  // namespace

void update_ema_targets(BuildContext& ctx) {
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : HostAccess::ema_targets(ctx)) {
    auto online = t.online->named_parameters(true);
    for (auto& p : t.target->named_parameters(true)) p.value().mul_(t.momentum).add_(online[p.key()], 1.0 - t.momentum);
    auto online_b = t.online->named_buffers(true);
    for (auto& b : t.target->named_buffers(true)) b.value().copy_(online_b[b.key()]);
  }
}

TrainResult train(const Recipe& recipe, const TrainOptions& options) {
  Run run(recipe, options, "");
  return run.go();
}

TrainResult resume(const std::string& run_dir, const TrainOptions& options) {
  Recipe recipe = load_run_recipe(run_dir);
  SSLAB_CHECK(!latest_checkpoint(run_dir).empty(), run_dir, ": no checkpoint to resume from");
  Run run(recipe, options, run_dir);
  return run.go();
}

int64_t load_weights(Experiment& exp, const std::string& checkpoint) {
  auto in = open_checkpoint(checkpoint, exp.context().device());
  for (const auto& [name, m] : exp.modules()) load_module(in, "model/" + name, *m, checkpoint);
  return scalar_of(in, "step");
}

}  // namespace sslab
