#include "sslab/host/federated.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "sslab/evaluation.h"
#include "sslab/host/autocast.h"
#include "sslab/host/checkpoint.h"
#include "sslab/host/distributed.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/experiment.h"
#include "sslab/host/json.h"
#include "sslab/host/loader.h"
#include "sslab/host/online_probe.h"
#include "sslab/host/optimizer.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/run_log.h"
#include "sslab/host/schedules.h"
#include "sslab/host/signals.h"

namespace fs = std::filesystem;

namespace sslab {

Schema federated_schema() {
  Schema s;
  s.boolean("enabled", true,
            "train federated (false: the same recipe trains centrally on the pooled data, the centralised baseline)");
  s.integer("clients", int64_t{10}, "number of clients the training split is partitioned over").min(1);
  s.integer("rounds", int64_t{10}, "communication rounds (they replace train.steps / train.epochs)").min(1);
  s.integer("local_steps", int64_t{10}, "optimizer steps each sampled client trains per round").min(1);
  s.integer("clients_per_round", int64_t{0}, "clients sampled each round, drawn with the seed (0: all)").min(0);
  s.string("partition", std::string("iid"),
           "iid (equal random shards), dirichlet (per-class shares from Dirichlet(alpha): label skew) or by_key "
           "(every sample with one value of `key` on one client: speakers, files)")
      .choices({"iid", "dirichlet", "by_key"});
  s.number("alpha", 0.5, "Dirichlet concentration (partition = \"dirichlet\"; 0.1: each client sees few classes)")
      .greater_than(0);
  s.string("key", std::string("label"),
           "integer sample key the dirichlet and by_key partitions read (clients never see it during training)");
  s.string("aggregate", std::string("fedavg"), "fedavg: the global model is the sample-weighted mean of the clients'")
      .choices({"fedavg"});
  s.strings("local", std::vector<std::string>{},
            "glob patterns of parameter and buffer names each client keeps for itself instead of taking the "
            "global ones (FedBN: [\"*.bn*\", \"*norm*\"]); names are <module>.<path>, e.g. encoders.main.bn1.weight");
  s.boolean("local_norms", false,
            "FedBN (Li et al. 2021): every normalisation layer's tensors (BatchNorm, SyncBatchNorm, LayerNorm, "
            "GroupNorm: weights and running statistics) stay with each client, as if listed in `local`");
  s.string("ema", std::string("average"),
           "EMA targets (BYOL, MoCo, DINO): average them like the weights, or keep one per client (local)")
      .choices({"average", "local"});
  s.string("optimizer_state", std::string("reset"),
           "each client's optimizer state: reset at the start of every round, or keep it from the client's last "
           "round (one process only)")
      .choices({"reset", "keep"});
  s.integer("only_client", int64_t{-1},
            "train this client's shard alone, centrally, for train.steps (the single-client baseline; -1: off)")
      .min(-1);
  s.integer("probe_batches", int64_t{10},
            "online-probe batches of the pooled training split per round on the global model (train.probe)")
      .min(0);
  s.integer("checkpoint_every", int64_t{0}, "write a checkpoint every N rounds (0: only at the end)").min(0);
  return s;
}

bool is_federated(const Recipe& recipe) {
  RecipeNode node = recipe.at("federated");
  if (!node.exists()) return false;
  Config fed = node.validate(federated_schema(), {});
  return fed.get_bool("enabled") && fed.get_int("only_client") < 0;
}

namespace {

std::vector<std::vector<int64_t>> sorted(std::vector<std::vector<int64_t>> parts) {
  for (auto& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

}  // namespace

std::vector<std::vector<int64_t>> partition_iid(int64_t n, int64_t clients, uint64_t seed) {
  SSLAB_CHECK(clients >= 1, "partition: clients must be >= 1");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(mix_seed(seed, 0x11d));
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::vector<int64_t>> parts(static_cast<size_t>(clients));
  for (int64_t k = 0; k < clients; ++k) {
    int64_t begin = n * k / clients, end = n * (k + 1) / clients;
    parts[k].assign(order.begin() + begin, order.begin() + end);
  }
  return sorted(std::move(parts));
}

std::vector<std::vector<int64_t>> partition_dirichlet(const std::vector<int64_t>& labels, int64_t clients, double alpha,
                                                      int64_t min_size, uint64_t seed, const std::string& where) {
  SSLAB_CHECK(clients >= 1, "partition: clients must be >= 1");
  SSLAB_CHECK(alpha > 0, where, ": the Dirichlet alpha must be > 0");
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  Rng rng(mix_seed(seed, 0xd1c));
  for (auto& [c, idx] : by_class) std::shuffle(idx.begin(), idx.end(), rng);
  std::gamma_distribution<double> gamma(alpha, 1.0);
  int64_t smallest = 0;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::vector<std::vector<int64_t>> parts(static_cast<size_t>(clients));
    for (const auto& [c, idx] : by_class) {
      std::vector<double> share(static_cast<size_t>(clients));
      double total = 0;
      for (auto& s : share) total += (s = gamma(rng));
      if (!(total > 0)) {  // every draw underflowed (tiny alpha): one client takes the class
        std::fill(share.begin(), share.end(), 0.0);
        share[std::uniform_int_distribution<int64_t>(0, clients - 1)(rng)] = total = 1.0;
      }
      const auto n = static_cast<int64_t>(idx.size());
      double cumulative = 0;
      int64_t begin = 0;
      for (int64_t k = 0; k < clients; ++k) {
        cumulative += share[k] / total;
        int64_t end = k == clients - 1 ? n : std::min<int64_t>(n, static_cast<int64_t>(std::floor(cumulative * n)));
        end = std::max(end, begin);
        parts[k].insert(parts[k].end(), idx.begin() + begin, idx.begin() + end);
        begin = end;
      }
    }
    smallest = static_cast<int64_t>(std::min_element(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
                                      return a.size() < b.size();
                                    })->size());
    if (smallest >= min_size) return sorted(std::move(parts));
  }
  throw UserError(str(where, ": a Dirichlet(", alpha, ") partition of ", labels.size(), " samples over ", clients,
                      " clients left a client with ", smallest, " samples (fewer than ", min_size,
                      ", one batch) in 1000 draws; raise alpha, lower federated.clients or train.batch_size"));
}

std::vector<std::vector<int64_t>> partition_by_key(const std::vector<int64_t>& keys, int64_t clients, uint64_t seed,
                                                   const std::string& where) {
  SSLAB_CHECK(clients >= 1, "partition: clients must be >= 1");
  std::map<int64_t, std::vector<int64_t>> groups;
  for (size_t i = 0; i < keys.size(); ++i) groups[keys[i]].push_back(static_cast<int64_t>(i));
  SSLAB_CHECK(static_cast<int64_t>(groups.size()) >= clients, where, ": ", groups.size(),
              " distinct values for ", clients, " clients; every client needs at least one (lower federated.clients)");
  std::vector<int64_t> values;
  for (const auto& [v, idx] : groups) values.push_back(v);
  Rng rng(mix_seed(seed, 0xb1c));
  std::shuffle(values.begin(), values.end(), rng);
  std::vector<std::vector<int64_t>> parts(static_cast<size_t>(clients));
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& idx = groups[values[i]];
    auto& part = parts[i % static_cast<size_t>(clients)];
    part.insert(part.end(), idx.begin(), idx.end());
  }
  return sorted(std::move(parts));
}

std::vector<std::vector<int64_t>> federated_partition(const Config& fed, const Dataset& dataset, uint64_t seed,
                                                      int64_t min_size, std::vector<int64_t>* values_out) {
  const int64_t clients = fed.get_int("clients"), n = dataset.size();
  const std::string kind = fed.get_string("partition");
  std::vector<std::vector<int64_t>> parts;
  if (kind == "iid") {
    SSLAB_CHECK(n / clients >= min_size, fed.locate("clients"), ": ", n, " training samples over ", clients,
                " clients leave ", n / clients, " per client, fewer than one batch (", min_size,
                "); lower federated.clients or train.batch_size");
    parts = partition_iid(n, clients, seed);
  } else {
    const std::string key = fed.get_string("key");
    std::vector<int64_t> values(static_cast<size_t>(n));
    if (n > 20000) std::cerr << "federated: reading '" << key << "' of " << n << " samples to partition them" << std::endl;
    for (int64_t i = 0; i < n; ++i) {
      Sample s = dataset.get(i);
      auto it = s.find(key);
      SSLAB_CHECK(it != s.end(), fed.locate("key"), ": sample ", i, " has no key '", key, "' to partition by");
      SSLAB_CHECK(it->second.numel() == 1 && !it->second.is_floating_point(), fed.locate("key"), ": '", key,
                  "' of sample ", i, " is not an integer scalar");
      values[i] = it->second.item<int64_t>();
    }
    parts = kind == "dirichlet" ? partition_dirichlet(values, clients, fed.get_float("alpha"), min_size, seed,
                                                      fed.locate("alpha"))
                                : partition_by_key(values, clients, seed, fed.locate("key"));
    for (int64_t k = 0; k < clients; ++k)
      SSLAB_CHECK(static_cast<int64_t>(parts[k].size()) >= min_size, fed.locate("partition"), ": client ", k,
                  " has ", parts[k].size(), " samples, fewer than one batch (", min_size,
                  "); lower federated.clients or train.batch_size");
    if (values_out) *values_out = std::move(values);
  }
  return parts;
}

std::vector<int64_t> round_clients(int64_t clients, int64_t per_round, uint64_t seed, int64_t round) {
  std::vector<int64_t> all(static_cast<size_t>(clients));
  std::iota(all.begin(), all.end(), 0);
  if (per_round <= 0 || per_round >= clients) return all;
  Rng rng(mix_seed(seed, 0x5e1, static_cast<uint64_t>(round)));
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<size_t>(per_round));
  std::sort(all.begin(), all.end());
  return all;
}


namespace {

Config federated_section(const Recipe& r, const std::string& name, const Schema& s) { return r.at(name).validate(s, {}); }

// One tensor of the state a client trains and the server averages.
struct Entry {
  std::string name;    // <module>.<path>, or ema.<target>.<path>
  torch::Tensor value; // the live tensor in the model
  bool local = false;  // kept per client
  bool parameter = false;
};

// What a client keeps between its rounds.
struct ClientState {
  std::map<size_t, torch::Tensor> local;  // entry index -> the client's copy
  std::string optimizer;                  // serialized optimizer state (optimizer_state = "keep")
};

std::string save_optimizer(torch::optim::Optimizer& o) {
  torch::serialize::OutputArchive a;
  o.save(a);
  std::ostringstream s;
  a.save_to(s);
  return s.str();
}

void load_optimizer(torch::optim::Optimizer& o, const std::string& bytes, const torch::Device& device) {
  torch::serialize::InputArchive a;
  std::istringstream s(bytes);
  a.load_from(s, device);
  o.load(a);
}

class FederatedRun {
 public:
  FederatedRun(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir);
  TrainResult go();

 private:
  void collect_state();
  void setup_dir(const std::string& resume_dir);
  void restore(CheckpointReader& in);
  void save(int64_t round);
  std::unique_ptr<Loader> client_loader(int64_t client) const;
  // Trains one client from the global snapshot; returns its summed metrics.
  std::map<std::string, double> train_client(int64_t client, int64_t round, const std::vector<torch::Tensor>& global);
  void round(int64_t r);
  void probe(int64_t r, std::map<std::string, double>& metrics);

  Recipe recipe_;
  TrainOptions options_;
  PluginHost host_;
  std::shared_ptr<Communicator> comm_;  // ranks host shares of the clients; null in one process
  std::unique_ptr<Experiment> exp_;
  Config train_, fed_, log_cfg_, ckpt_cfg_, eval_cfg_;
  fs::path dir_;
  std::vector<std::vector<int64_t>> parts_;
  std::vector<int64_t> key_values_;  // the partition key of every sample (dirichlet, by_key)
  std::vector<Entry> state_;
  std::vector<ClientState> clients_;
  std::vector<int64_t> rounds_joined_;  // per client: rounds trained so far (its loader position)
  std::vector<torch::Tensor> params_;
  std::unique_ptr<LrSchedule> lr_;
  std::unique_ptr<OnlineProbes> probes_;
  std::unique_ptr<Loader> probe_loader_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::unique_ptr<Progress> progress_;
  std::shared_ptr<Dataset> train_data_;
  int64_t rounds_ = 0, local_steps_ = 0, accumulate_ = 1, round_ = 0, saved_round_ = -1;
  int rank_ = 0, world_ = 1;
  bool bf16_ = false, resumed_ = false;
  double last_loss_ = 0;
};

FederatedRun::FederatedRun(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir)
    : recipe_(recipe),
      options_(options),
      train_(federated_section(recipe, "train", train_schema())),
      fed_(federated_section(recipe, "federated", federated_schema())),
      log_cfg_(federated_section(recipe, "log", log_schema())),
      ckpt_cfg_(federated_section(recipe, "checkpoint", checkpoint_schema())),
      eval_cfg_(federated_section(recipe, "eval", eval_schema())) {
  set_threads(options_.threads > 0 ? options_.threads : train_.get_int("threads"));
  validate_training(recipe_);
  SSLAB_CHECK(train_.get_string("bucket_key").empty(), train_.locate("bucket_key"),
              ": length bucketing is not available with [federated] (its centralised and single-client baselines "
              "bucket as usual)");
  const bool cuda = train_.get_string("device") == "cuda";
  bf16_ = train_.get_string("precision") == "bf16";
  DistEnv env = read_dist_env();
  rank_ = env.rank;
  world_ = env.world_size;
  rounds_ = fed_.get_int("rounds");
  local_steps_ = fed_.get_int("local_steps");
  const int64_t clients = fed_.get_int("clients"), per_round = fed_.get_int("clients_per_round");
  const int64_t sampled = per_round > 0 ? std::min(per_round, clients) : clients;
  if (world_ > 1) {
    SSLAB_CHECK(sampled >= world_, fed_.locate("clients_per_round"), ": ", sampled, " clients a round for ", world_,
                " ranks; every rank needs at least one client each round");
    SSLAB_CHECK(fed_.get_string("optimizer_state") == "reset", fed_.locate("optimizer_state"),
                ": \"keep\" needs one process (a client's optimizer state lives where it trained); use \"reset\" "
                "under torchrun");
    Config dist = federated_section(recipe, "distributed", distributed_schema());
    comm_ = connect(env, dist.get_string("backend"), std::chrono::milliseconds(dist.get_int("timeout_s") * 1000),
                    cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank))
                         : torch::Device(torch::kCPU));
  }
  ExperimentOptions eo;
  eo.initialize = resume_dir.empty() || latest_checkpoint(resume_dir).empty();
  std::ostringstream quiet;
  if (rank_ != 0) eo.log = &quiet;
  // Clients train alone: the objectives see no communicator (SimCLR's
  // negatives and Sinkhorn's sums stay within the client's batch).
  exp_ = std::make_unique<Experiment>(recipe_, host_, nullptr, env.local_rank, eo);
  BuildContext& ctx = exp_->context();
  train_data_ = ctx.dataset("train", recipe_.file() + ": [data.train]");
  accumulate_ = train_.get_int("accumulate");
  const int64_t batch = train_.get_int("batch_size");
  parts_ = federated_partition(fed_, *train_data_, ctx.seed(), batch / accumulate_, &key_values_);
  clients_.resize(static_cast<size_t>(clients));
  rounds_joined_.assign(static_cast<size_t>(clients), 0);
  params_ = exp_->parameters();
  lr_ = std::make_unique<LrSchedule>(train_, rounds_ * local_steps_);
  if (rank_ == 0) {
    probes_ = std::make_unique<OnlineProbes>(ctx, train_.get_bool("probe") ? train_data_->num_classes() : 0,
                                             train_.get_float("probe_lr"), 1, nullptr);
    if (!probes_->empty() && fed_.get_int("probe_batches") > 0) {
      LoaderOptions lo;
      lo.batch_size = batch / accumulate_;
      lo.views = exp_->views();
      lo.workers = static_cast<int>(train_.get_int("workers"));
      lo.prefetch = static_cast<int>(train_.get_int("prefetch"));
      lo.seed = mix_seed(ctx.seed(), 0x9b0be);
      probe_loader_ = std::make_unique<Loader>(train_data_, lo, exp_->pipelines());
    }
  }
  collect_state();
  setup_dir(resume_dir);
}

// The tensors clients train and the server averages: every module's
// parameters and buffers (once each, shared modules included) and the EMA
// targets'.
void FederatedRun::collect_state() {
  std::set<const void*> seen, norms;
  const auto patterns = fed_.get_strings("local");
  if (fed_.get_bool("local_norms")) {
    for (const auto& [name, m] : exp_->modules())
      for (const auto& sub : m->modules(true)) {
        if (sub->name().find("Norm") == std::string::npos) continue;
        for (const auto& p : sub->parameters(false)) norms.insert(p.unsafeGetTensorImpl());
        for (const auto& b : sub->buffers(false)) norms.insert(b.unsafeGetTensorImpl());
      }
    SSLAB_CHECK(!norms.empty(), fed_.locate("local_norms"), ": the model has no normalisation layer to keep local");
  }
  auto add = [&](const std::string& name, const torch::Tensor& t, bool parameter, bool ema) {
    if (!seen.insert(t.unsafeGetTensorImpl()).second) return;
    Entry e{name, t, false, parameter};
    if (ema) {
      e.local = fed_.get_string("ema") == "local";
    } else {
      e.local = norms.count(t.unsafeGetTensorImpl()) != 0;
      for (const auto& p : patterns) e.local = e.local || fnmatch(p.c_str(), name.c_str(), 0) == 0;
    }
    state_.push_back(e);
  };
  for (const auto& [name, m] : exp_->modules()) {
    for (const auto& p : m->named_parameters(true)) add(name + "." + p.key(), p.value(), true, false);
    for (const auto& b : m->named_buffers(true)) add(name + "." + b.key(), b.value(), false, false);
  }
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) {
    for (const auto& p : t.target->named_parameters(true)) add("ema." + name + "." + p.key(), p.value(), false, true);
    for (const auto& b : t.target->named_buffers(true)) add("ema." + name + "." + b.key(), b.value(), false, true);
  }
  for (const auto& p : patterns) {
    bool used = std::any_of(state_.begin(), state_.end(), [&](const Entry& e) {
      return e.name.rfind("ema.", 0) != 0 && fnmatch(p.c_str(), e.name.c_str(), 0) == 0;
    });
    SSLAB_CHECK(used, fed_.locate("local"), ": '", p, "' matches no parameter or buffer (names look like '",
                state_.empty() ? std::string("?") : state_.front().name, "')");
  }
}

void FederatedRun::setup_dir(const std::string& resume_dir) {
  dir_ = choose_run_dir(recipe_, options_, resume_dir);
  if (!resume_dir.empty() && !latest_checkpoint(resume_dir).empty()) {
    auto ckpt = open_latest_checkpoint(resume_dir, exp_->context().device(), std::cerr);
    restore(*ckpt);
    resumed_ = true;
  }
  if (rank_ != 0) return;
  if (resumed_) {
    fs::create_directories(dir_ / "checkpoints");
    truncate_metrics((dir_ / "metrics.jsonl").string(), round_ * local_steps_);
    // rounds.jsonl: the lines of the rounds after the checkpoint go (they are trained again).
    const fs::path rounds = dir_ / "rounds.jsonl";
    std::ifstream in(rounds.string());
    std::string line, kept;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("round") && j["round"].is_number() && j["round"].get<int64_t>() <= round_)
        kept += line + "\n";
    }
    in.close();
    write_file_atomic(rounds.string(), kept);
  } else {
    create_run_folder(dir_.string(), recipe_);
    // The partition, for the record: each client's size and label counts.
    nlohmann::ordered_json j;
    j["partition"] = fed_.get_string("partition");
    j["clients"] = nlohmann::ordered_json::array();
    if (!key_values_.empty()) j["key"] = fed_.get_string("key");
    for (size_t k = 0; k < parts_.size(); ++k) {
      nlohmann::ordered_json c{{"client", k}, {"samples", parts_[k].size()}};
      if (!key_values_.empty()) {  // samples per key value ("label": the label skew)
        std::map<int64_t, int64_t> counts;
        for (int64_t i : parts_[k]) ++counts[key_values_[i]];
        nlohmann::ordered_json by_value = nlohmann::ordered_json::object();
        for (const auto& [v, n] : counts) by_value[std::to_string(v)] = n;
        c["by_" + fed_.get_string("key")] = by_value;
      }
      j["clients"].push_back(c);
    }
    std::ofstream((dir_ / "partition.json").string()) << j.dump(1) << "\n";
  }
  metrics_ = std::make_unique<MetricsWriter>((dir_ / "metrics.jsonl").string());
  if (log_cfg_.get_bool("tensorboard")) tb_ = std::make_unique<TensorBoardWriter>((dir_ / "tensorboard").string());
}

// A checkpoint of a round boundary: the global model (model/<name>,
// ema/<name>, as every checkpoint, so `sslab eval` and `init` read it), the
// probes, and what clients keep (client/<k>/<entry>, client_optimizer/<k>).
void FederatedRun::save(int64_t round) {
  CheckpointWriter out;
  const int64_t step = round * local_steps_;
  out.scalar("step", step);
  out.scalar("federated_round", round);
  out.bytes("recipe", recipe_.to_toml());
  for (const auto& [name, m] : exp_->modules()) out.module("model/" + name, *m);
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) out.module("ema/" + name, *t.target);
  if (probes_) probes_->save(out);
  for (size_t k = 0; k < clients_.size(); ++k) {
    for (const auto& [i, t] : clients_[k].local) out.tensor(str("client/", k, "/", state_[i].name), t);
    if (!clients_[k].optimizer.empty()) out.bytes(str("client_optimizer/", k), clients_[k].optimizer);
  }
  out.save(checkpoint_path(dir_.string(), step));
  prune_checkpoints(dir_.string(), ckpt_cfg_.get_int("keep_last"));
  saved_round_ = round;
}

void FederatedRun::restore(CheckpointReader& in) {
  const std::string& file = in.file();
  int64_t round = 0;
  try {
    round = in.scalar("federated_round");
  } catch (const std::exception&) {
    throw UserError(str(file, ": not a federated checkpoint (no federated_round); resume it without [federated]"));
  }
  SSLAB_CHECK(in.scalar("step") == round * local_steps_, file, ": step ", in.scalar("step"), " is not round ", round,
              " x federated.local_steps (", local_steps_, "); the recipe's local_steps changed");
  for (const auto& [name, m] : exp_->modules()) in.module("model/" + name, *m);
  for (auto& [name, t] : HostAccess::ema_targets(exp_->context())) in.module("ema/" + name, *t.target);
  if (probes_) probes_->load(in);
  // Every rank reads the clients' state (any rank may host a client next round).
  for (size_t k = 0; k < clients_.size(); ++k) {
    for (size_t i = 0; i < state_.size(); ++i) {
      if (!state_[i].local) continue;
      std::string key = str("client/", k, "/", state_[i].name);
      try {
        clients_[k].local[i] = in.tensor(key);
      } catch (const std::exception&) {
        // This client had not trained yet: it starts from the global tensor.
      }
    }
    in.bytes(str("client_optimizer/", k), clients_[k].optimizer);
  }
  const int64_t clients = fed_.get_int("clients"), per_round = fed_.get_int("clients_per_round");
  for (int64_t r = 1; r <= round; ++r)
    for (int64_t k : round_clients(clients, per_round, exp_->context().seed(), r)) ++rounds_joined_[k];
  if (probe_loader_) {
    const int64_t seen = round * fed_.get_int("probe_batches"), per_epoch = probe_loader_->batches_per_epoch();
    probe_loader_->seek(seen / per_epoch, seen % per_epoch);
  }
  round_ = round;
}

std::unique_ptr<Loader> FederatedRun::client_loader(int64_t client) const {
  LoaderOptions lo;
  lo.batch_size = train_.get_int("batch_size") / accumulate_;
  lo.pin_memory = exp_->context().device().is_cuda();
  lo.views = exp_->views();
  lo.workers = static_cast<int>(train_.get_int("workers"));
  lo.prefetch = static_cast<int>(train_.get_int("prefetch"));
  // seed + client: one client with every sample reads what a centralised run does.
  lo.seed = exp_->context().seed() + static_cast<uint64_t>(client);
  auto loader = std::make_unique<Loader>(subset_dataset(train_data_, parts_[client]), lo, exp_->pipelines());
  // The client continues where its last round stopped.
  const int64_t done = rounds_joined_[client] * local_steps_ * accumulate_, per_epoch = loader->batches_per_epoch();
  loader->seek(done / per_epoch, done % per_epoch);
  return loader;
}

std::map<std::string, double> FederatedRun::train_client(int64_t client, int64_t r,
                                                         const std::vector<torch::Tensor>& global) {
  BuildContext& ctx = exp_->context();
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < state_.size(); ++i) {
      auto it = clients_[client].local.find(i);
      state_[i].value.copy_(it != clients_[client].local.end() ? it->second : global[i]);
    }
  }
  auto optimizer = make_optimizer(train_, params_);
  if (!clients_[client].optimizer.empty()) load_optimizer(*optimizer, clients_[client].optimizer, ctx.device());
  // The client's randomness (masks, negatives) depends on the client and the
  // round only, not on which rank trains it.
  torch::manual_seed(mix_seed(ctx.seed(), static_cast<uint64_t>(client), static_cast<uint64_t>(r)));
  auto loader = client_loader(client);
  const int64_t total = rounds_ * local_steps_;
  std::map<std::string, double> sums;
  for (int64_t s = 1; s <= local_steps_; ++s) {
    const int64_t step = (r - 1) * local_steps_ + s;
    set_lr(*optimizer, lr_->at(step));
    optimizer->zero_grad();
    for (int64_t micro = 0; micro < accumulate_; ++micro) {
      Batch batch = loader->next();
      if (!ctx.device().is_cpu()) batch = batch.to(ctx.device(), true);
      torch::Tensor loss;
      {
        AutocastBf16 autocast(bf16_);  // forward passes only, as in the trainer
        loss = objectives_loss(*exp_, batch, 1.0 / static_cast<double>(accumulate_), sums, sums["loss"],
                               str("round ", r, ", client ", client, ", local step ", s));
      }
      loss.backward();
    }
    const double max_norm = train_.get_float("grad_clip");
    if (max_norm > 0) torch::nn::utils::clip_grad_norm_(params_, max_norm);
    optimizer->step();
    schedule_ema_momentum(ctx, step, total);
    update_ema_targets(ctx);
  }
  for (auto& [k, v] : sums) v /= static_cast<double>(local_steps_);
  // Drift: the L2 distance of the client's parameters from the global ones.
  double drift = 0;
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < state_.size(); ++i)
      if (state_[i].parameter) drift += (state_[i].value.to(torch::kFloat64) - global[i].to(torch::kFloat64)).pow(2).sum().item<double>();
    for (size_t i = 0; i < state_.size(); ++i)
      if (state_[i].local) clients_[client].local[i] = state_[i].value.detach().clone();
  }
  sums["drift"] = std::sqrt(drift);
  if (fed_.get_string("optimizer_state") == "keep") clients_[client].optimizer = save_optimizer(*optimizer);
  return sums;
}

void FederatedRun::round(int64_t r) {
  BuildContext& ctx = exp_->context();
  const auto chosen = round_clients(fed_.get_int("clients"), fed_.get_int("clients_per_round"), ctx.seed(), r);
  std::vector<torch::Tensor> global, sum;
  {
    torch::NoGradGuard no_grad;
    for (const auto& e : state_) {
      global.push_back(e.value.detach().clone());
      sum.push_back(torch::zeros(e.value.sizes(), e.value.options().dtype(torch::kFloat64)));
    }
  }
  double total_samples = 0;
  for (int64_t k : chosen) total_samples += static_cast<double>(parts_[k].size());
  // Per chosen client: [loss, drift] for the round's log; the rest of the
  // metrics sample-weighted.
  torch::Tensor per_client = torch::zeros({static_cast<int64_t>(chosen.size()), 2}, torch::kFloat64);
  std::map<std::string, double> weighted;
  for (size_t i = 0; i < chosen.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(world_)) != rank_) continue;
    const int64_t k = chosen[i];
    auto m = train_client(k, r, global);
    const double w = static_cast<double>(parts_[k].size()) / total_samples;
    per_client[static_cast<int64_t>(i)][0] = m["loss"];
    per_client[static_cast<int64_t>(i)][1] = m["drift"];
    for (const auto& [name, v] : m)
      if (name != "drift") weighted[name] += w * v;
    torch::NoGradGuard no_grad;
    for (size_t j = 0; j < state_.size(); ++j) sum[j].add_(state_[j].value.to(torch::kFloat64), w);
  }
  if (comm_) {
    std::vector<torch::Tensor> all = sum;
    all.push_back(per_client);
    // Metric names are the same on every rank (every rank trains a client).
    torch::Tensor values = torch::zeros({static_cast<int64_t>(weighted.size())}, torch::kFloat64);
    int64_t j = 0;
    for (const auto& [name, v] : weighted) values[j++] = v;
    all.push_back(values);
    // The clients' own tensors go to every rank (any may host them next round).
    std::vector<torch::Tensor> locals;
    for (size_t i = 0; i < chosen.size(); ++i)
      for (size_t e = 0; e < state_.size(); ++e)
        if (state_[e].local) {
          auto& store = clients_[chosen[i]].local;
          bool mine = static_cast<int>(i % static_cast<size_t>(world_)) == rank_;
          locals.push_back(mine ? store.at(e).to(torch::kFloat64) : torch::zeros(state_[e].value.sizes(), torch::kFloat64));
        }
    all.insert(all.end(), locals.begin(), locals.end());
    comm_->all_reduce_sum(all);
    j = 0;
    for (auto& [name, v] : weighted) v = values[j++].item<double>();
    size_t l = 0;
    for (size_t i = 0; i < chosen.size(); ++i)
      for (size_t e = 0; e < state_.size(); ++e)
        if (state_[e].local) clients_[chosen[i]].local[e] = locals[l++].to(state_[e].value.dtype());
  }
  {
    torch::NoGradGuard no_grad;
    for (size_t j = 0; j < state_.size(); ++j) {
      if (state_[j].value.is_floating_point()) {
        state_[j].value.copy_(sum[j]);
      } else {
        state_[j].value.copy_(sum[j].round());
      }
    }
  }
  for (int64_t k : chosen) ++rounds_joined_[k];
  // The round's line: the clients' weighted means, participation and drift.
  std::map<std::string, double> m = weighted;
  m["round"] = static_cast<double>(r);
  m["clients"] = static_cast<double>(chosen.size());
  auto drift = per_client.select(1, 1);
  m["drift_mean"] = drift.mean().item<double>();
  m["drift_max"] = drift.max().item<double>();
  m["lr"] = lr_->at(r * local_steps_);
  last_loss_ = m["loss"];
  if (rank_ == 0) {
    probe(r, m);
    metrics_->write(r * local_steps_, m);
    if (tb_) {
      for (const auto& [k, v] : m) tb_->add_scalar(k, v, r * local_steps_);
      tb_->flush();
    }
    // Who took part, with each client's loss and drift.
    nlohmann::ordered_json line;
    line["round"] = r;
    line["clients"] = chosen;
    line["samples"] = nlohmann::ordered_json::array();
    line["loss"] = nlohmann::ordered_json::array();
    line["drift"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < chosen.size(); ++i) {
      line["samples"].push_back(parts_[chosen[i]].size());
      line["loss"].push_back(json_number(per_client[static_cast<int64_t>(i)][0].item<double>(), 9));
      line["drift"].push_back(json_number(per_client[static_cast<int64_t>(i)][1].item<double>(), 9));
    }
    std::ofstream((dir_ / "rounds.jsonl").string(), std::ios::app) << json_line(line) << "\n";
    progress_->update(r, m);
  }
  round_ = r;
}

// The online probe: probe_batches of the pooled training split through the
// global model (eval mode: the probe changes no statistics of the model).
void FederatedRun::probe(int64_t r, std::map<std::string, double>& metrics) {
  if (!probe_loader_) return;
  std::vector<torch::nn::Module*> modules;
  for (const auto& [n, m] : exp_->modules()) modules.push_back(m.get());
  EvalMode eval(modules);
  const int64_t n = fed_.get_int("probe_batches");
  std::map<std::string, double> acc;
  for (int64_t i = 0; i < n; ++i) {
    Batch batch = probe_loader_->next();
    if (!exp_->context().device().is_cpu()) batch = batch.to(exp_->context().device(), true);
    probes_->train_step(batch, (r - 1) * n + i + 1, n, acc);
  }
  for (const auto& [k, v] : acc) metrics[k] = v;
}

TrainResult FederatedRun::go() {
  const bool rank0 = rank_ == 0;
  if (rank0) {
    std::cout << "run folder: " << dir_.string() << (resumed_ ? str(" (resumed after round ", round_, ")") : "") << "\n";
    std::vector<size_t> sizes;
    for (const auto& p : parts_) sizes.push_back(p.size());
    std::cout << "federated: " << parts_.size() << " clients (" << fed_.get_string("partition") << "), samples "
              << *std::min_element(sizes.begin(), sizes.end()) << ".." << *std::max_element(sizes.begin(), sizes.end())
              << "; " << rounds_ << " rounds of " << local_steps_ << " local steps";
    const auto local = std::count_if(state_.begin(), state_.end(), [](const Entry& e) { return e.local; });
    if (local > 0) std::cout << "; " << local << " of " << state_.size() << " tensors kept per client";
    std::cout << std::endl;
  }
  progress_ = std::make_unique<Progress>(rank0 ? log_cfg_.get_string("progress") : "none", rounds_, round_);
  for (const auto& [n, m] : exp_->modules()) m->train();
  const int64_t every = fed_.get_int("checkpoint_every");
  std::optional<StopSignals> signals(std::in_place);
  while (round_ < rounds_) {
    round(round_ + 1);
    if (rank0 && ((every > 0 && round_ % every == 0) || round_ == rounds_)) save(round_);
    int sig = StopSignals::received();
    if (comm_) {
      std::vector<torch::Tensor> flag{torch::full({1}, sig != 0 ? 1.0 : 0.0, torch::kFloat64)};
      comm_->all_reduce_sum(flag);
      if (flag[0].item<double>() > 0 && sig == 0) sig = SIGTERM;
    }
    if (sig != 0) {
      if (rank0 && saved_round_ != round_) save(round_);
      if (comm_) comm_->barrier();
      progress_->finish();
      if (rank0)
        std::cerr << "sslab train: stopped by " << StopSignals::name(sig) << " after round " << round_ << " of "
                  << rounds_ << "; resume with: sslab train --resume " << dir_.string() << std::endl;
      TrainResult stopped{dir_.string(), round_ * local_steps_, last_loss_};
      stopped.stopped_by = sig;
      return stopped;
    }
  }
  signals.reset();
  progress_->finish();
  if (comm_) comm_->barrier();
  TrainResult result{dir_.string(), round_ * local_steps_, last_loss_};
  if (options_.evaluate && eval_cfg_.get_bool("enabled") && recipe_.root().has("eval") && rank0) {
    for (const auto& [n, m] : exp_->modules()) m->eval();
    EvalResults r = evaluate(*exp_, dir_.string());
    std::cout << eval_table(r);
  }
  const SkipLog& log = exp_->skip_log();
  if (log.count() > 0 && rank0) {
    std::string file = (dir_ / "skipped.tsv").string();
    log.write_tsv(file);
    std::cerr << log.summary(file);
  }
  return result;
}

}  // namespace

TrainResult train_federated(const Recipe& recipe, const TrainOptions& options, const std::string& resume_dir) {
  FederatedRun run(recipe, options, resume_dir);
  return run.go();
}

}  // namespace sslab
