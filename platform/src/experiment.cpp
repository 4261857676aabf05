#include "sslab/host/experiment.h"
#include "sslab/host/weights.h"

#include <iostream>
#include <set>
#include <sstream>

#include "sslab/host/distributed.h"
#include "sslab/host/evaluation.h"
#include "sslab/host/protocols.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"

namespace sslab {

namespace {
class LimitedDataset : public Dataset {
 public:
  LimitedDataset(std::shared_ptr<Dataset> inner, int64_t limit) : inner_(std::move(inner)), limit_(limit) {}
  int64_t size() const override { return std::min(limit_, inner_->size()); }
  Sample get(int64_t index) const override { return inner_->get(index); }
  int64_t num_classes() const override { return inner_->num_classes(); }

 private:
  std::shared_ptr<Dataset> inner_;
  int64_t limit_;
};
}  // namespace

namespace {
class SkippingDataset : public Dataset {
 public:
  SkippingDataset(std::shared_ptr<Dataset> inner, std::string split, std::shared_ptr<SkipLog> log, int64_t max_bad)
      : inner_(std::move(inner)), split_(std::move(split)), log_(std::move(log)), max_bad_(max_bad) {}
  int64_t size() const override { return inner_->size(); }
  int64_t num_classes() const override { return inner_->num_classes(); }
  Sample get(int64_t index) const override {
    const int64_t n = inner_->size();
    const int64_t tries = std::min(n, max_bad_ + 1);
    std::string first;
    for (int64_t k = 0; k < tries; ++k) {
      const int64_t i = (index + k) % n;
      if (log_->known_bad(split_, i)) continue;  // read once: a bad file stays bad
      try {
        return inner_->get(i);
      } catch (const DataError& e) {
        log_->record(split_, i, e);
        if (first.empty()) first = e.path();
      }
    }
    throw DataError(first.empty() ? split_ : first,
                    str("sample ", index, " of split '", split_, "' and the ", tries - 1,
                        " after it are all unreadable; on_error = \"skip\" skips bad files, not broken data"));
  }

 private:
  std::shared_ptr<Dataset> inner_;
  std::string split_;
  std::shared_ptr<SkipLog> log_;
  int64_t max_bad_;
};
}  // namespace

void SkipLog::record(const std::string& split, int64_t index, const DataError& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!seen_.insert({split, index}).second) return;
  entries_.push_back({split, index, error.path(), error.what()});
  any_.store(true, std::memory_order_release);
}

bool SkipLog::known_bad(const std::string& split, int64_t index) const {
  if (!any_.load(std::memory_order_acquire)) return false;  // every get() asks: keep the clean case lock-free
  std::lock_guard<std::mutex> lock(mutex_);
  return seen_.count({split, index}) > 0;
}

std::vector<SkipLog::Entry> SkipLog::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_;
}

int64_t SkipLog::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(entries_.size());
}

std::string SkipLog::summary(const std::string& listed_in) const {
  auto all = entries();
  if (all.empty()) return "";
  std::map<std::string, int64_t> per_split;
  for (const auto& e : all) ++per_split[e.split];
  std::ostringstream out;
  out << "skipped " << all.size() << " unreadable sample" << (all.size() == 1 ? "" : "s") << " (on_error = \"skip\"; ";
  bool first = true;
  for (const auto& [split, n] : per_split) out << (first ? "" : ", ") << split << ": " << n, first = false;
  out << "), each replaced by the next readable sample:\n";
  const size_t shown = std::min<size_t>(all.size(), 5);
  for (size_t i = 0; i < shown; ++i) out << "  " << all[i].what << "\n";
  if (all.size() > shown) out << "  ... and " << all.size() - shown << " more";
  if (!listed_in.empty()) out << (all.size() > shown ? "; " : "  ") << "all listed in " << listed_in;
  if (all.size() > shown || !listed_in.empty()) out << "\n";
  return out.str();
}

bool SkipLog::write_tsv(const std::string& file) const {
  auto all = entries();
  if (all.empty()) return false;
  std::string text = "split\tindex\tpath\terror\n";
  auto clean = [](std::string s) {
    for (auto& c : s)
      if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return s;
  };
  for (const auto& e : all)
    text += clean(e.split) + "\t" + std::to_string(e.index) + "\t" + clean(e.path) + "\t" + clean(e.what) + "\n";
  write_file_atomic(file, text);
  return true;
}

std::shared_ptr<Dataset> skip_unreadable(std::shared_ptr<Dataset> inner, std::string split, std::shared_ptr<SkipLog> log,
                                         int64_t max_consecutive) {
  return std::make_shared<SkippingDataset>(std::move(inner), std::move(split), std::move(log), max_consecutive);
}

std::shared_ptr<Dataset> limit_dataset(std::shared_ptr<Dataset> inner, int64_t limit) {
  if (limit <= 0 || limit >= inner->size()) return inner;
  return std::make_shared<LimitedDataset>(std::move(inner), limit);
}

namespace {

// The samples of `inner` at `indices`, in that order.
class IndexedDataset : public Dataset {
 public:
  IndexedDataset(std::shared_ptr<Dataset> inner, std::vector<int64_t> indices)
      : inner_(std::move(inner)), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Sample get(int64_t i) const override { return inner_->get(indices_.at(static_cast<size_t>(i))); }
  int64_t num_classes() const override { return inner_->num_classes(); }

 private:
  std::shared_ptr<Dataset> inner_;
  std::vector<int64_t> indices_;
};

}  // namespace

std::shared_ptr<Dataset> subset_dataset(std::shared_ptr<Dataset> inner, std::vector<int64_t> indices) {
  for (int64_t i : indices)
    SSLAB_CHECK(i >= 0 && i < inner->size(), "subset: index ", i, " outside a dataset of ", inner->size());
  return std::make_shared<IndexedDataset>(std::move(inner), std::move(indices));
}

namespace {

// Starts component `kind_name`.`name` (built from `node`) from its `init` weights.
void initialize_component(torch::nn::Module& m, const RecipeNode& node, ComponentKind kind, const std::string& kind_name,
                          const std::string& name, const Registries& reg, std::ostream& log) {
  Config cfg = component_config(node, kind, reg);
  if (cfg.get_string("init").empty()) return;
  const std::string file = cfg.get_path("init");
  InitOptions options;
  options.strict = cfg.get_bool("init_strict");
  for (const auto& r : cfg.get_strings("init_map")) options.renames.push_back(parse_rename(r, node.locate("init_map")));
  const std::string component = kind_name + "." + (cfg.get_string("init_component").empty() ? name : cfg.get_string("init_component"));
  const std::string where = node.locate("init");
  NamedTensors weights;
  try {
    weights = read_init_weights(file, component);
  } catch (const UserError& e) {
    throw UserError(str(where, ": ", e.what()));
  }
  log << load_weights_into(m, weights, options, file, where) << "\n";
}

}  // namespace

Experiment::Experiment(Recipe recipe, PluginHost& host, std::shared_ptr<Communicator> comm, int local_rank,
                       ExperimentOptions options)
    : recipe_(std::move(recipe)) {
  std::ostream& init_log = options.log ? *options.log : std::cerr;
  load_recipe_plugins(recipe_, host);
  Registries& reg = Registries::global();
  validate_recipe(recipe_, reg);
  ctx_ = std::make_unique<BuildContext>(recipe_, reg);
  BuildContext& ctx = *ctx_;
  Config train = recipe_.at("train").validate(train_schema(), {});
  HostAccess::set_seed(ctx, static_cast<uint64_t>(train.get_int("seed")));
  torch::Device device = train.get_string("device") == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (comm) {
    HostAccess::set_comm(ctx, comm, comm->rank(), comm->world_size());
    if (device.is_cuda()) device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  }
  HostAccess::set_device(ctx, device);
  SSLAB_CHECK(!device.is_cuda() || torch::cuda::is_available(), recipe_.at("train").locate("device"),
              " is \"cuda\" but no CUDA device is available to this LibTorch");
  torch::manual_seed(ctx.seed());

  // Tokenizers first: text datasets tokenize in get() with a named tokenizer.
  RecipeNode toks = recipe_.at("tokenizers");
  if (toks.exists()) {
    for (const auto& name : toks.keys()) {
      RecipeNode node = toks.child(name);
      Config cfg = component_config(node, ComponentKind::Tokenizer, reg);
      HostAccess::tokenizers(ctx)[name] = reg.tokenizers.at(node.required_string("type")).factory(cfg, *ctx_);
    }
  }
  RecipeNode data = recipe_.at("data");
  if (data.exists()) {
    for (const auto& split : data.keys()) {
      RecipeNode node = data.child(split);
      Config cfg = component_config(node, ComponentKind::Dataset, reg);
      auto ds = reg.datasets.at(node.required_string("type")).factory(cfg, *ctx_);
      ds = limit_dataset(ds, cfg.get_int("limit"));
      skip_[split] = cfg.get_string("on_error") == "skip";
      if (skip_[split]) ds = skip_unreadable(ds, split, skip_log_);
      HostAccess::datasets(ctx)[split] = ds;
    }
  }
  RecipeNode encs = recipe_.at("encoders");
  if (encs.exists()) {
    for (const auto& name : encs.keys()) {
      RecipeNode node = encs.child(name);
      auto build = [this, node, &reg]() -> std::shared_ptr<Encoder> {
        Config cfg = component_config(node, ComponentKind::Encoder, reg);
        auto enc = reg.encoders.at(node.required_string("type")).factory(cfg, *ctx_);
        SSLAB_ASSERT(enc, "factory of ", node.required_string("type"), " returned nothing");
        if (!cfg.get_string("input").empty()) enc->set_input(cfg.get_string("input"));
        SSLAB_CHECK(!enc->input().empty(), node.locate("input"), ": the encoder needs an input key");
        enc->to(ctx_->device());
        return enc;
      };
      HostAccess::encoders(ctx)[name] = build();
      if (options.initialize)
        initialize_component(*HostAccess::encoders(ctx)[name], node, ComponentKind::Encoder, "encoders", name, reg, init_log);
      HostAccess::builders(ctx)["encoders." + name] = build;
      HostAccess::builders(ctx)[name] = build;
    }
  }
  RecipeNode heads = recipe_.at("heads");
  if (heads.exists()) {
    for (const auto& name : heads.keys()) {
      RecipeNode node = heads.child(name);
      auto build = [this, node, &reg]() -> std::shared_ptr<Head> {
        Config cfg = component_config(node, ComponentKind::Head, reg);
        auto head = reg.heads.at(node.required_string("type")).factory(cfg, *ctx_);
        head->to(ctx_->device());
        return head;
      };
      HostAccess::heads(ctx)[name] = build();
      if (options.initialize)
        initialize_component(*HostAccess::heads(ctx)[name], node, ComponentKind::Head, "heads", name, reg, init_log);
      if (!HostAccess::builders(ctx).count(name)) HostAccess::builders(ctx)[name] = build;
    }
  }
  RecipeNode views = recipe_.at("views");
  if (views.exists()) {
    Schema vs;
    for (const auto& key : views.keys()) vs.integer(key, int64_t{2}, "views of this input").min(1).max(64);
    Config vc = views.validate(vs, {});
    for (const auto& key : views.keys()) views_[key] = static_cast<int>(vc.get_int(key));
  }
  RecipeNode transforms = recipe_.at("transforms");
  if (transforms.exists()) {
    std::map<std::string, Pipeline> by_key;
    for (const auto& key : transforms.keys()) {
      Pipeline p;
      p.key = key;
      for (const auto& node : transforms.table_array(key)) {
        Config cfg = component_config(node, ComponentKind::Transform, reg);
        p.transforms.push_back(reg.transforms.at(node.required_string("type")).factory(cfg, *ctx_));
      }
      by_key[key] = std::move(p);
    }
    // "<key>@*": the pipeline of every view of key without a pipeline of its own.
    for (const auto& [key, p] : by_key) {
      if (key.size() < 2 || key.substr(key.size() - 2) != "@*") continue;
      std::string base = key.substr(0, key.size() - 2);
      SSLAB_CHECK(views_.count(base), transforms.locate(key), ": transforms for views of '", base,
                  "' but [views] does not give '", base, "' a number of views");
      for (int v = 0; v < views_[base]; ++v) {
        std::string vkey = base + "@" + std::to_string(v);
        if (by_key.count(vkey)) continue;
        Pipeline copy = p;
        copy.key = vkey;
        pipelines_.push_back(std::move(copy));
      }
    }
    for (auto& [key, p] : by_key)
      if (key.size() < 2 || key.substr(key.size() - 2) != "@*") pipelines_.push_back(std::move(p));
  }
  std::set<std::string> names;
  for (const auto& node : recipe_.root().table_array("objectives")) {
    Config cfg = component_config(node, ComponentKind::Objective, reg);
    ObjectiveSlot slot;
    std::string type = node.required_string("type");
    slot.name = cfg.get_string("name").empty() ? type : cfg.get_string("name");
    SSLAB_CHECK(names.insert(slot.name).second, node.locate("name"), ": two objectives are named '", slot.name,
                "'; give each a distinct name");
    slot.weight = cfg.get_float("weight");
    slot.objective = reg.objectives.at(type).factory(cfg, *ctx_);
    slot.objective->to(ctx.device());
    objectives_.push_back(std::move(slot));
  }
  // The [eval] table's protocols (probes, fine-tuning, few-shot) first, then [[evaluators]] in recipe order.
  Config eval = recipe_.at("eval").validate(eval_schema(), {});
  for (const auto& protocol : eval.get_strings("protocols")) {
    if (protocol == "probe") {
      evaluators_.emplace_back("[eval] (sslab.probes)", make_probes(eval, ctx));
    } else if (protocol == "finetune") {
      evaluators_.emplace_back("[eval.finetune] (sslab.finetune)",
                               make_finetune(recipe_.at("eval").child("finetune").validate(finetune_schema(), {}), ctx));
    } else if (protocol == "fewshot") {
      evaluators_.emplace_back("[eval.fewshot] (sslab.fewshot)",
                               make_fewshot(recipe_.at("eval").child("fewshot").validate(fewshot_schema(), {}), ctx));
    }
  }
  auto evaluator_nodes = recipe_.root().table_array("evaluators");
  for (size_t i = 0; i < evaluator_nodes.size(); ++i) {
    const RecipeNode& node = evaluator_nodes[i];
    Config cfg = component_config(node, ComponentKind::Evaluator, reg);
    std::string type = node.required_string("type");
    evaluators_.emplace_back("evaluators[" + std::to_string(i) + "] (" + type + ")",
                             reg.evaluators.at(type).factory(cfg, ctx));
  }
  // Every rank built the same initial weights (the trainer also broadcasts
  // rank 0's); objectives' own randomness must differ between ranks.
  if (ctx.rank() > 0) torch::manual_seed(ctx.seed() * 1000003ULL + static_cast<uint64_t>(ctx.rank()));
}

bool Experiment::skips_bad_samples(const std::string& split) const {
  auto it = skip_.find(split);
  return it != skip_.end() && it->second;
}

std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> Experiment::modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> out;
  for (const auto& n : ctx_->encoder_names()) out.emplace_back("encoders." + n, ctx_->encoder(n));
  for (const auto& n : ctx_->head_names()) out.emplace_back("heads." + n, ctx_->head(n));
  for (size_t i = 0; i < objectives_.size(); ++i)
    out.emplace_back("objectives." + std::to_string(i), objectives_[i].objective);
  return out;
}

std::vector<torch::Tensor> Experiment::parameters() const {
  std::vector<torch::Tensor> out;
  std::set<const void*> seen;
  for (const auto& [n, m] : modules()) {
    for (const auto& p : m->parameters(true)) {
      if (!p.requires_grad()) continue;
      if (seen.insert(p.unsafeGetTensorImpl()).second) out.push_back(p);
    }
  }
  return out;
}

}  // namespace sslab
