#include "sslab/host/trainer.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>

#include "sslab/host/accumulator.h"
#include "sslab/host/autocast.h"
#include "sslab/host/distributed.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/federated.h"
#include "sslab/host/loader.h"
#include "sslab/host/memory.h"
#include "sslab/images.h"
#include "sslab/host/monitors.h"
#include "sslab/host/online_probe.h"
#include "sslab/host/optimizer.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_log.h"
#include "sslab/host/schedules.h"
#include "sslab/host/signals.h"

namespace fs = std::filesystem;

namespace sslab {

int set_threads(int64_t threads) {
  int n = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return n;
}

void update_ema_targets(BuildContext& ctx) {
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : HostAccess::ema_targets(ctx)) {
    auto online = t.online->named_parameters(true);
    for (auto& p : t.target->named_parameters(true)) p.value().mul_(t.momentum).add_(online[p.key()], 1.0 - t.momentum);
    auto online_b = t.online->named_buffers(true);
    for (auto& b : t.target->named_buffers(true)) b.value().copy_(online_b[b.key()]);
  }
}

std::string choose_run_dir(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir) {
  if (!resume_dir.empty()) return resume_dir;
  if (options.out.empty()) return default_run_dir(recipe);
  SSLAB_CHECK(latest_checkpoint(options.out).empty(), "run folder '", options.out,
              "' already holds checkpoints; continue it with 'sslab train --resume ", options.out,
              "' or choose another --out");
  return options.out;
}

torch::Tensor objectives_loss(Experiment& exp, const Batch& batch, double scale, std::map<std::string, double>& metrics,
                              double& total, const std::string& where) {
  torch::Tensor loss;
  for (auto& slot : exp.objectives()) {
    ObjectiveOutput out = slot.objective->compute(batch);
    double value = out.loss.item<double>();
    if (!std::isfinite(value)) {
      throw UserError(str(where, ": objective '", slot.name, "' gave a ", std::isnan(value) ? "NaN" : "infinite",
                          " loss; the run stops (lower train.lr, set train.grad_clip, or check the data)"));
    }
    torch::Tensor weighted = out.loss * (slot.weight * scale);
    loss = loss.defined() ? loss + weighted : weighted;
    total += slot.weight * value * scale;  // the weighted total, without another sync
    metrics[slot.name + "/loss"] += value * scale;
    for (const auto& [k, v] : out.metrics) metrics[slot.name + "/" + k] += v * scale;
  }
  return loss;
}

namespace {

Config section(const Recipe& r, const std::string& name, const Schema& s) { return r.at(name).validate(s, {}); }

// One optimizer step's metrics, summed over its micro-batches.
struct StepMetrics {
  std::map<std::string, double> values;
  double loss = 0;  // the weighted total of the objectives
};

class Run {
 public:
  Run(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir);
  TrainResult go();

 private:
  void setup_dir(const std::string& resume_dir);
  void illustrate(const Batch& batch, int64_t step);
  void broadcast_state();
  TrainingState state() { return {recipe_, *exp_, *loader_, *optimizer_, *probes_, acc_}; }
  // The steps of the loop.
  Batch next_batch();
  void count_padding(const Batch& batch);
  torch::Tensor objectives(const Batch& batch, int64_t step, StepMetrics& m);
  void backward(torch::Tensor& loss, bool last_micro);
  void clip(StepMetrics& m);
  void end_step(int64_t step, StepMetrics& m);
  void log(int64_t step, std::map<std::string, double> m, double elapsed, int64_t samples);
  std::map<std::string, double> reduced_means();
  int stop_requested();
  void report_skipped();
  void stop(int signal);

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
  std::unique_ptr<LrSchedule> lr_;
  std::unique_ptr<OnlineProbes> probes_;
  std::unique_ptr<Monitors> monitors_;  // null with log.monitors = false
  std::ostringstream monitor_quiet_;    // other ranks' collapse warnings (rank 0 says it)
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::unique_ptr<Progress> progress_;
  Accumulator acc_;
  std::vector<torch::Tensor> params_;
  int64_t step_ = 0, total_steps_ = 0, accumulate_ = 1, saved_step_ = -1;
  bool resumed_ = false, bf16_ = false;
  double last_loss_ = 0;
  std::chrono::steady_clock::time_point t_log_;
  int64_t samples_since_log_ = 0;
  std::map<std::string, std::pair<double, double>> padding_;  // key -> (real, padded) elements since the log
};

Run::Run(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir)
    : recipe_(recipe),
      options_(options),
      train_(section(recipe, "train", train_schema())),
      log_cfg_(section(recipe, "log", log_schema())),
      ckpt_cfg_(section(recipe, "checkpoint", checkpoint_schema())),
      eval_cfg_(section(recipe, "eval", eval_schema())) {
  set_threads(options_.threads > 0 ? options_.threads : train_.get_int("threads"));
  validate_training(recipe_);
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
  // A resumed run's weights come from its checkpoint: its `init` files are not read.
  ExperimentOptions eo;
  eo.initialize = resume_dir.empty() || latest_checkpoint(resume_dir).empty();
  std::ostringstream quiet;  // one rank says what its init loaded
  if (env.rank != 0) eo.log = &quiet;
  exp_ = std::make_unique<Experiment>(recipe_, host_, comm_, env.local_rank, eo);
  BuildContext& ctx = exp_->context();
  SSLAB_CHECK(!exp_->objectives().empty(), recipe_.file(), ": the recipe has no [[objectives]] to train");
  auto train_data = ctx.dataset("train", recipe_.file() + ": [data.train]");

  accumulate_ = train_.get_int("accumulate");
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
  // on_error = "skip" is the split's dataset's (Experiment): it replaces an
  // unreadable sample, here and in every evaluation that reads the split.
  // [federated] with only_client = k: the single-client baseline trains on
  // client k's shard alone (evaluation still reads the whole split).
  std::shared_ptr<Dataset> loader_data = train_data;
  if (recipe_.at("federated").exists()) {
    Config fed = section(recipe_, "federated", federated_schema());
    const int64_t k = fed.get_int("only_client");
    if (fed.get_bool("enabled") && k >= 0) {
      SSLAB_CHECK(k < fed.get_int("clients"), fed.locate("only_client"), " (", k, ") must be below federated.clients (",
                  fed.get_int("clients"), ")");
      auto parts = federated_partition(fed, *train_data, ctx.seed(), lo.batch_size);
      if (env.rank == 0)
        std::cout << "federated.only_client = " << k << ": training on its " << parts[k].size() << " of "
                  << train_data->size() << " samples" << std::endl;
      loader_data = subset_dataset(train_data, parts[k]);
    }
  }
  if (!train_.get_string("bucket_key").empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    lo.lengths = sample_lengths(*loader_data, train_.get_string("bucket_key"), std::max(1, lo.workers),
                                train_.locate("bucket_key"));
    lo.bucket_width = train_.get_int("bucket_width");
    lo.max_tokens = train_.get_int("max_tokens");
    if (env.rank == 0)
      std::cout << "bucketing by '" << train_.get_string("bucket_key") << "': read " << lo.lengths.size()
                << " lengths in " << std::fixed << std::setprecision(1)
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s"
                << std::defaultfloat << std::endl;
  }
  loader_ = std::make_unique<Loader>(loader_data, lo, exp_->pipelines());
  int64_t steps = train_.get_int("steps");
  total_steps_ = steps > 0 ? steps
                           : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(train_.get_float("epochs") *
                                                                                 loader_->batches_per_epoch() /
                                                                                 accumulate_)));
  params_ = exp_->parameters();
  optimizer_ = make_optimizer(train_, params_);
  lr_ = std::make_unique<LrSchedule>(train_, total_steps_);
  probes_ = std::make_unique<OnlineProbes>(ctx, train_.get_bool("probe") ? train_data->num_classes() : 0,
                                           train_.get_float("probe_lr"), train_.get_int("probe_every"), comm_);
  if (log_cfg_.get_bool("monitors"))
    monitors_ = std::make_unique<Monitors>(ctx, exp_->views(), ctx.rank() == 0 ? std::cerr : monitor_quiet_);
  setup_dir(resume_dir);
  if (comm_) {
    broadcast_state();
    sync_ = std::make_unique<GradientSync>(comm_, params_, static_cast<int64_t>(dist.get_float("bucket_mb") * 1024 * 1024),
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
  for (auto& t : probes_->state_tensors()) tensors.push_back(t);
  torch::NoGradGuard no_grad;
  comm_->broadcast(tensors, 0);
}

void Run::setup_dir(const std::string& resume_dir) {
  dir_ = choose_run_dir(recipe_, options_, resume_dir);
  if (!resume_dir.empty() && !latest_checkpoint(resume_dir).empty()) {
    auto ckpt = open_latest_checkpoint(resume_dir, exp_->context().device(), std::cerr);
    step_ = restore_checkpoint(state(), *ckpt);
    resumed_ = true;
  }
  if (exp_->context().rank() != 0) return;
  if (resumed_) {
    fs::create_directories(dir_ / "checkpoints");
    truncate_metrics((dir_ / "metrics.jsonl").string(), step_);  // drop lines after the checkpoint
  } else {
    create_run_folder(dir_.string(), recipe_);
  }
  metrics_ = std::make_unique<MetricsWriter>((dir_ / "metrics.jsonl").string());
  if (log_cfg_.get_bool("tensorboard")) tb_ = std::make_unique<TensorBoardWriter>((dir_ / "tensorboard").string());
}

TrainResult Run::go() {
  BuildContext& ctx = exp_->context();
  bool rank0 = ctx.rank() == 0;
  if (rank0) std::cout << "run folder: " << dir_.string() << (resumed_ ? " (resumed at step " + std::to_string(step_) + ")" : "") << std::endl;
  progress_ = std::make_unique<Progress>(rank0 ? log_cfg_.get_string("progress") : "none", total_steps_, step_);
  for (const auto& [n, m] : exp_->modules()) m->train();
  t_log_ = std::chrono::steady_clock::now();

  // SIGTERM, SIGINT, SIGUSR1: finish the step, checkpoint, exit kExitInterrupted.
  std::optional<StopSignals> signals(std::in_place);
  while (step_ < total_steps_) {
    int64_t step = step_ + 1;
    set_lr(*optimizer_, lr_->at(step));
    optimizer_->zero_grad();
    StepMetrics m;
    for (int64_t micro = 0; micro < accumulate_; ++micro) {
      Batch batch = next_batch();
      torch::Tensor loss = objectives(batch, step, m);
      backward(loss, micro == accumulate_ - 1);
      probes_->train_step(batch, step, accumulate_, m.values);
      if (monitors_ && micro == 0 && (step % log_cfg_.get_int("every_steps") == 0 || step == total_steps_))
        monitors_->observe(batch, step, m.values);
      const int64_t images_every = log_cfg_.get_int("images_every_steps");
      if (micro == 0 && ctx.rank() == 0 && log_cfg_.get_bool("images") &&
          (step == total_steps_ || (images_every > 0 && step % images_every == 0)))
        illustrate(batch, step);
    }
    clip(m);
    optimizer_->step();
    schedule_ema_momentum(ctx, step, total_steps_);
    update_ema_targets(ctx);
    end_step(step, m);
    if (int sig = stop_requested()) {
      stop(sig);
      report_skipped();
      TrainResult stopped{dir_.string(), step_, last_loss_};
      stopped.stopped_by = sig;
      return stopped;
    }
  }
  // The final checkpoint is written: from here a signal stops at once
  // ('sslab eval RUN_DIR' or '--resume' runs the evaluation again).
  signals.reset();
  progress_->finish();
  if (comm_) comm_->barrier();  // every rank is done with collectives; rank 0 evaluates alone
  TrainResult result{dir_.string(), step_, last_loss_};
  if (options_.evaluate && eval_cfg_.get_bool("enabled") && recipe_.root().has("eval") && rank0) {
    for (const auto& [n, m] : exp_->modules()) m->eval();
    EvalResults r = evaluate(*exp_, dir_.string());
    std::cout << eval_table(r);
  }
  report_skipped();
  return result;
}

// loader.next: one micro-batch, on the training device.
Batch Run::next_batch() {
  Batch batch = loader_->next();
  count_padding(batch);  // on the host batch: no device sync
  if (!exp_->context().device().is_cpu()) batch = batch.to(exp_->context().device(), true);
  samples_since_log_ += batch.size;
  return batch;
}

// Real and padded elements of each variable-length key since the last log.
// A batch whose samples happen to share one length is collated without
// "<key>.length" (common under bucketing): all real, once the key is known
// to vary.
void Run::count_padding(const Batch& batch) {
  for (const auto& [key, t] : batch.tensors) {
    if (t.dim() < 2) continue;
    const auto length = batch.tensors.find(key + ".length");
    if (length == batch.tensors.end() && !padding_.count(key)) continue;
    const auto n = static_cast<double>(t.size(0) * t.size(1));
    auto& [real, padded] = padding_[key];
    real += length != batch.tensors.end() ? static_cast<double>(length->second.sum().item<int64_t>()) : n;
    padded += n;
  }
}

// The objectives' forward passes: their weighted sum over this micro-batch,
// divided by the micro-batches per step. Stops the run on a NaN/infinite loss.
torch::Tensor Run::objectives(const Batch& batch, int64_t step, StepMetrics& m) {
  AutocastBf16 autocast(bf16_);  // forward passes only; backward follows the forward dtypes
  return objectives_loss(*exp_, batch, 1.0 / static_cast<double>(accumulate_), m.values, m.loss, str("step ", step));
}

// Accumulates gradients; on the last micro-batch of a data-parallel step the
// gradients are all-reduced during this backward.
void Run::backward(torch::Tensor& loss, bool last_micro) {
  if (sync_ && last_micro) sync_->arm();
  loss.backward();
  if (sync_ && last_micro) sync_->finish();
}

void Run::clip(StepMetrics& m) {
  double max_norm = train_.get_float("grad_clip");
  if (max_norm > 0) m.values["grad_norm"] = torch::nn::utils::clip_grad_norm_(params_, max_norm);
}

// The step's bookkeeping: metrics (every log.every_steps), a checkpoint
// (every checkpoint.every_steps and at the end), releasing cached memory.
void Run::end_step(int64_t step, StepMetrics& m) {
  m.values["loss"] = m.loss;
  last_loss_ = m.loss;
  acc_.add(m.values);
  step_ = step;
  if (step % log_cfg_.get_int("every_steps") == 0 || step == total_steps_) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log_).count();
    std::map<std::string, double> shown = reduced_means();
    acc_.clear();
    log(step, shown, elapsed, samples_since_log_);
    progress_->update(step, shown);
    t_log_ = std::chrono::steady_clock::now();
    samples_since_log_ = 0;
  }
  int64_t ckpt_every = ckpt_cfg_.get_int("every_steps");
  if (((ckpt_every > 0 && step % ckpt_every == 0) || step == total_steps_) && exp_->context().rank() == 0) {
    save_checkpoint(state(), step, dir_.string(), ckpt_cfg_.get_int("keep_last"));
    saved_step_ = step;
  }
  int64_t release_every = train_.get_int("release_memory_every");
  if (release_every > 0 && step % release_every == 0) release_free_memory();
}

// The accumulated metrics, averaged over ranks (skipped samples summed).
std::map<std::string, double> Run::reduced_means() {
  std::map<std::string, double> m = acc_.means();
  const auto skipped = static_cast<double>(exp_->skip_log().count());
  if (!comm_) {
    if (skipped > 0) m["skipped_samples"] = skipped;
    return m;
  }
  m["skipped_samples"] = skipped;
  m = average_metrics(*comm_, m);
  m["skipped_samples"] *= comm_->world_size();
  if (m["skipped_samples"] == 0) m.erase("skipped_samples");
  return m;
}

// What on_error = "skip" skipped (training and the evaluation): a paragraph
// on stderr and every file in RUN_DIR/skipped.tsv (skipped.rank<r>.tsv on
// ranks other than 0, which read other samples).
void Run::report_skipped() {
  const SkipLog& log = exp_->skip_log();
  if (log.count() == 0) return;
  int rank = exp_->context().rank();
  std::string name = rank == 0 ? "skipped.tsv" : "skipped.rank" + std::to_string(rank) + ".tsv";
  std::string file = (dir_ / name).string();
  log.write_tsv(file);
  std::cerr << (rank == 0 ? "" : "rank " + std::to_string(rank) + ": ") << log.summary(file);
}

// The signal that stops the run after this step, 0 to go on. Ranks agree
// (a scalar all-reduce per step): torchrun forwards a signal to every
// worker, but they need not receive it during the same step.
int Run::stop_requested() {
  int sig = StopSignals::received();
  if (!comm_) return sig;
  std::vector<torch::Tensor> flag{torch::full({1}, sig != 0 ? 1.0 : 0.0, torch::kFloat64)};
  comm_->all_reduce_sum(flag);
  if (flag[0].item<double>() == 0) return 0;
  return sig != 0 ? sig : SIGTERM;  // another rank's signal: stop the same way
}

// Stops after the current step: a checkpoint of it (unless one was just
// written), every rank waiting for it, and how to resume.
void Run::stop(int signal) {
  bool rank0 = exp_->context().rank() == 0;
  if (rank0 && saved_step_ != step_) {
    save_checkpoint(state(), step_, dir_.string(), ckpt_cfg_.get_int("keep_last"));
    saved_step_ = step_;
  }
  if (comm_) comm_->barrier();  // nobody exits (and gets the job torn down) before the checkpoint is complete
  progress_->finish();
  if (!rank0) return;
  std::cerr << "sslab train: stopped by " << StopSignals::name(signal) << " after step " << step_ << " of "
            << total_steps_ << "; checkpoint " << latest_checkpoint(dir_.string()) << "\n"
            << "resume with: sslab train --resume " << dir_.string() << std::endl;
}

// Pictures of the objectives that draw them (sslab::Illustrator), on this
// step's batch: to TensorBoard and RUN/images/<objective>-<name>-step-<N>.png.
void Run::illustrate(const Batch& batch, int64_t step) {
  std::vector<torch::nn::Module*> modules;
  for (const auto& [n, m] : exp_->modules()) modules.push_back(m.get());
  for (auto& slot : exp_->objectives()) {
    auto* illustrator = dynamic_cast<Illustrator*>(slot.objective.get());
    if (!illustrator) continue;
    std::map<std::string, torch::Tensor> pictures;
    {
      EvalMode eval(modules);
      torch::NoGradGuard no_grad;
      pictures = illustrator->pictures(batch);
    }
    fs::create_directories(dir_ / "images");
    for (const auto& [name, image] : pictures) {
      std::string png;
      try {
        png = encode_png(image);
      } catch (const UserError& e) {
        throw InternalError(str("objective ", slot.name, ": picture '", name, "': ", e.what()));
      }
      char file[64];
      std::snprintf(file, sizeof(file), "-step-%09lld.png", static_cast<long long>(step));
      write_file_atomic((dir_ / "images" / (slot.name + "-" + name + file)).string(), png);
      const torch::Tensor shown = image.dim() == 2 ? image.unsqueeze(0) : image;
      if (tb_) tb_->add_image(slot.name + "/" + name, png, shown.size(1), shown.size(2), static_cast<int>(shown.size(0)), step);
    }
  }
  if (tb_) tb_->flush();
}

void Run::log(int64_t step, std::map<std::string, double> m, double elapsed, int64_t samples) {
  if (exp_->context().rank() != 0) {
    for (auto& [key, rp] : padding_) rp = {0.0, 0.0};  // keys stay known as variable-length
    return;
  }
  m["lr"] = lr_->at(step);
  m["samples_per_s"] = samples * exp_->context().world_size() / std::max(elapsed, 1e-9);
  // padding/<key>: the padded share of a variable-length key's batches;
  // <key>/per_s: its real (unpadded) elements per second, all ranks.
  for (auto& [key, rp] : padding_) {
    if (rp.second == 0) continue;
    m["padding/" + key] = 1.0 - rp.first / rp.second;
    m[key + "/per_s"] = rp.first * exp_->context().world_size() / std::max(elapsed, 1e-9);
    rp = {0.0, 0.0};
  }
  m["epoch"] = static_cast<double>(loader_->epoch()) + static_cast<double>(loader_->batch_in_epoch()) /
                                                           loader_->batches_per_epoch();
  metrics_->write(step, m);
  if (tb_) {
    for (const auto& [k, v] : m) tb_->add_scalar(k, v, step);
    tb_->flush();
  }
}

}  // namespace

TrainResult train(const Recipe& recipe, const TrainOptions& options) {
  if (is_federated(recipe)) return train_federated(recipe, options, "");
  Run run(recipe, options, "");
  return run.go();
}

TrainResult resume(const std::string& run_dir, const TrainOptions& options) {
  Recipe recipe = load_run_recipe(run_dir);
  SSLAB_CHECK(!latest_checkpoint(run_dir).empty(), run_dir, ": no checkpoint to resume from");
  if (is_federated(recipe)) return train_federated(recipe, options, run_dir);
  Run run(recipe, options, run_dir);
  return run.go();
}

}  // namespace sslab
