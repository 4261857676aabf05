#include "sslab/host/recipe_schema.h"

#include <algorithm>

#include "sslab/host/evaluation.h"
#include "sslab/host/federated.h"
#include "sslab/host/protocols.h"

#include <filesystem>

#include "sslab/error.h"
#include "sslab/host/plugin_host.h"

namespace sslab {

Schema plugins_schema() {
  Schema s;
  s.strings("load", std::vector<std::string>{}, "plugins to load: names (libsslab-<name>.so on the search path) or paths");
  s.strings("path", std::vector<std::string>{}, "extra folders to search for plugins, relative to the recipe");
  return s;
}

Schema train_schema() {
  Schema s;
  s.integer("seed", int64_t{0}, "random seed: the same recipe and seed give the same losses on CPU").min(0);
  s.integer("threads", int64_t{0}, "intra-op CPU threads (0: one per core)").min(0);
  s.integer("batch_size", int64_t{256}, "samples per optimizer step (per rank: global / world size)").min(1);
  s.integer("steps", int64_t{0}, "optimizer steps (0: use epochs)").min(0);
  s.number("epochs", 0.0, "passes over the training split when steps = 0").min(0);
  s.string("optimizer", std::string("adamw"), "adamw, or sgd (with momentum)").choices({"adamw", "sgd"});
  s.number("lr", 1e-3, "peak learning rate").greater_than(0);
  s.number("min_lr", 0.0, "learning rate at the end of the cosine schedule").min(0);
  s.number("weight_decay", 0.05, "decoupled (adamw) or L2 (sgd, lars) weight decay").min(0);
  s.numbers("betas", std::vector<double>{0.9, 0.95}, "AdamW betas").length(2).min(0).max(0.9999999);
  s.number("momentum", 0.9, "SGD/LARS momentum").min(0).max(1);
  s.integer("warmup_steps", int64_t{0}, "linear warmup steps").min(0);
  s.string("schedule", std::string("cosine"), "learning-rate schedule after warmup").choices({"cosine", "constant"});
  s.number("grad_clip", 0.0, "clip the global gradient norm to this (0: off)").min(0);
  s.integer("accumulate", int64_t{1}, "micro-batches per optimizer step").min(1);
  s.integer("release_memory_every", int64_t{200},
            "return the allocator's free pages to the OS every N steps (jemalloc; 0: never): bounds memory when "
            "batch shapes vary, at the cost of re-touching them once")
      .min(0);
  s.string("device", std::string("cpu"), "cpu or cuda").choices({"cpu", "cuda"});
  s.string("precision", std::string("fp32"), "fp32, or bf16 autocast on CUDA").choices({"fp32", "bf16"});
  s.integer("workers", int64_t{2}, "data loader worker threads").min(0);
  s.integer("prefetch", int64_t{4}, "batches prepared ahead").min(1);
  s.string("bucket_key", std::string(""),
           "length bucketing: the variable-length batch key (text.ids, audio.wave) whose samples are batched with "
           "others of similar length, its length read once from every training sample (\"\": no bucketing)");
  s.integer("bucket_width", int64_t{1}, "bucketing: lengths are rounded up to a multiple of this before sorting, "
            "so samples of one rounded length mix from epoch to epoch").min(1);
  s.integer("max_tokens", int64_t{0},
            "bucketing: batches of up to this many padded tokens (samples x longest), at most batch_size / "
            "accumulate / world size samples (0: that many samples each)")
      .min(0);
  s.boolean("probe", true, "train an online linear probe on detached embeddings when labels exist");
  s.number("probe_lr", 1e-3, "online probe learning rate").greater_than(0);
  s.integer("probe_every", int64_t{1},
            "train the online probe on every Nth step only: its extra no-grad forward of the encoder costs about "
            "a quarter of a small CNN's step")
      .min(1);
  return s;
}

Schema eval_schema() {
  // The run's own sslab.probes evaluator is configured here (its keys).
  Schema s;
  s.boolean("enabled", true, "evaluate at the end of training");
  s.strings("protocols", std::vector<std::string>{"probe"},
            "protocols run after training: probe (this table's keys), finetune ([eval.finetune]), fewshot "
            "([eval.fewshot])");
  s.table("finetune", "sslab.finetune settings: fine-tuning on label fractions beside from-scratch training");
  s.table("fewshot", "sslab.fewshot settings: k-shot episodes on frozen features");
  s.merge(probes_schema());
  return s;
}

Schema log_schema() {
  Schema s;
  s.integer("every_steps", int64_t{10}, "log metrics every N steps").min(1);
  s.boolean("tensorboard", true, "write TensorBoard event files");
  s.boolean("images", true, "draw the pictures of objectives that have them (see images_every_steps)");
  s.integer("images_every_steps", int64_t{0},
            "pictures of objectives that draw them (MAE reconstructions, predicted frames) to TensorBoard and "
            "RUN/images/ every N steps (0: only at the end of training)")
      .min(0);
  s.boolean("monitors", true,
            "on each logged step, measure every encoder's embeddings of the batch (std, effective rank, two views' "
            "alignment and uniformity) as monitor/<encoder>/*, and warn once when one collapses");
  s.string("progress", std::string("auto"), "progress display").choices({"auto", "bar", "plain", "none"});
  return s;
}

Schema checkpoint_schema() {
  Schema s;
  s.integer("every_steps", int64_t{0}, "save a checkpoint every N steps (0: only at the end)").min(0);
  s.integer("keep_last", int64_t{2}, "checkpoints kept: older ones are deleted, and only after the new one is complete").min(1);
  return s;
}

Schema distributed_schema() {
  Schema s;
  s.string("backend", std::string("auto"), "c10d backend: gloo (CPU), nccl (CUDA) or auto").choices({"auto", "gloo", "nccl"});
  s.integer("timeout_s", int64_t{300},
            "seconds to wait for the rendezvous and for each collective: a rank that died or hangs stops the others "
            "after this").min(1);
  s.number("bucket_mb", 25.0, "gradient all-reduce bucket size in MiB").greater_than(0);
  s.boolean("overlap", true, "start each bucket's all-reduce during backward as soon as its gradients are ready");
  return s;
}

// The keys of an encoder or head that start it from weights trained elsewhere.
static void add_init_keys(Schema& s) {
  s.string("init", std::string(""),
           "start from these weights (relative to the recipe): a safetensors file, an `sslab export` folder or "
           "file, or a run folder or checkpoint (its newest readable checkpoint); not read on resume")
      .path();
  s.string("init_component", std::string(""),
           "which encoder or head of that export or run to take (default: this one's own name)");
  s.boolean("init_strict", true,
            "every tensor of the model must be in the file and every tensor of the file used (false: load the names "
            "that match, say what was not)");
  s.strings("init_map", std::vector<std::string>{},
            "renames of the file's tensor names before matching, 'from=to' prefix pairs tried in order "
            "('module.=' strips 'module.')");
}

Schema common_schema(ComponentKind kind) {
  Schema s;
  switch (kind) {
    case ComponentKind::Dataset:
      s.integer("limit", int64_t{0}, "use only the first N samples (0: all)").min(0);
      s.string("on_error", std::string("fail"), "an unreadable sample file: fail naming it, or skip it (the next readable sample takes its place in training and "
               "every evaluation; the files are named at the end and listed in skipped.tsv)").choices({"fail", "skip"});
      break;
    case ComponentKind::Encoder:
      s.string("input", std::string(""), "batch key the encoder reads (default: the encoder's own)");
      add_init_keys(s);
      break;
    case ComponentKind::Head:
      add_init_keys(s);
      break;
    case ComponentKind::Objective:
      s.number("weight", 1.0, "weight of this loss in the total").min(0);
      s.string("name", std::string(""), "name used in logs (default: the type)");
      break;
    default:
      break;
  }
  return s;
}

Config component_config(const RecipeNode& node, ComponentKind kind, const Registries& registries) {
  std::string type = node.required_string("type");
  const ComponentInfo& info = registries.info(kind, type, node.locate("type"));
  Schema schema = info.schema;
  schema.merge(common_schema(kind));
  return node.validate(schema);
}

void load_recipe_plugins(const Recipe& recipe, PluginHost& host) {
  RecipeNode node = recipe.at("plugins");
  Config cfg = node.validate(plugins_schema(), {});
  std::vector<std::string> dirs;
  for (const auto& d : cfg.get_strings("path")) {
    std::filesystem::path p(d);
    dirs.push_back(p.is_relative() ? (std::filesystem::path(node.folder_of("path")) / p).string() : d);
  }
  for (const auto& name : cfg.get_strings("load")) {
    try {
      host.load(name, dirs, node.folder_of("load"));
    } catch (const UserError& e) {
      throw UserError(str(node.locate("load"), ": ", e.what()));
    }
  }
}

static void validate_components(const RecipeNode& section, ComponentKind kind, const Registries& registries) {
  if (!section.exists()) return;
  for (const auto& name : section.keys()) {
    component_config(section.child(name), kind, registries);
    // A combining dataset (ssl.paired) holds its parts as nested datasets.
    if (kind == ComponentKind::Dataset) validate_components(section.child(name).child("parts"), kind, registries);
  }
}

void validate_recipe(const Recipe& recipe, const Registries& registries) {
  RecipeNode root = recipe.root();
  Schema top;
  top.string("name", std::string(""), "experiment name (default: the file name)");
  top.string("description", std::string(""), "one line about the experiment");
  top.table("plugins", "plugins to load");
  top.table("data", "datasets by split: [data.train], [data.test]");
  top.table("views", "views per input for joint-embedding objectives: image = 2 makes image@0, image@1");
  top.table("transforms", "per-input transform pipelines: [[transforms.image]], [[transforms.\"image@0\"]], \"image@*\"");
  top.table("tokenizers", "tokenizers by name");
  top.table("encoders", "encoders by name");
  top.table("heads", "heads by name");
  top.tables("objectives", "losses: [[objectives]] with type and weight");
  top.tables("evaluators", "extra evaluators: [[evaluators]] with type");
  top.table("train", "optimizer, schedule, steps, device");
  top.table("eval", "evaluation after training");
  top.table("log", "logging");
  top.table("checkpoint", "checkpointing");
  top.table("distributed", "c10d settings");
  top.table("federated", "federated training over simulated clients (docs/federated.md)");
  root.validate(top, {});

  recipe.at("plugins").validate(plugins_schema(), {});
  recipe.at("train").validate(train_schema(), {});
  Config eval = recipe.at("eval").validate(eval_schema(), {});
  for (const auto& p : eval.get_strings("protocols"))
    SSLAB_CHECK(std::count(eval_protocols().begin(), eval_protocols().end(), p), recipe.at("eval").locate("protocols"),
                ": unknown protocol '", p, "'; ", suggestion_text(p, eval_protocols()));
  recipe.at("eval").child("finetune").validate(finetune_schema(), {});
  recipe.at("eval").child("fewshot").validate(fewshot_schema(), {});
  recipe.at("log").validate(log_schema(), {});
  recipe.at("checkpoint").validate(checkpoint_schema(), {});
  recipe.at("distributed").validate(distributed_schema(), {});
  recipe.at("federated").validate(federated_schema(), {});

  validate_components(recipe.at("data"), ComponentKind::Dataset, registries);
  validate_components(recipe.at("tokenizers"), ComponentKind::Tokenizer, registries);
  validate_components(recipe.at("encoders"), ComponentKind::Encoder, registries);
  validate_components(recipe.at("heads"), ComponentKind::Head, registries);
  RecipeNode transforms = recipe.at("transforms");
  if (transforms.exists()) {
    for (const auto& input : transforms.keys())
      for (const auto& t : transforms.table_array(input)) component_config(t, ComponentKind::Transform, registries);
  }
  for (const auto& o : root.table_array("objectives")) component_config(o, ComponentKind::Objective, registries);
  for (const auto& e : root.table_array("evaluators")) component_config(e, ComponentKind::Evaluator, registries);

  Config train = recipe.at("train").validate(train_schema(), {});
  SSLAB_CHECK(!root.has("objectives") || train.get_int("steps") > 0 || train.get_float("epochs") > 0,
              recipe.at("train").where(), ": train.steps or train.epochs must be > 0");
}

const std::vector<std::string>& eval_protocols() {
  static const std::vector<std::string> names{"probe", "finetune", "fewshot"};
  return names;
}

void validate_training(const Recipe& recipe) {
  SSLAB_CHECK(!recipe.root().table_array("objectives").empty(), recipe.file(),
              ": the recipe has no [[objectives]] to train");
  SSLAB_CHECK(recipe.at("data").child("train").exists(), recipe.file(),
              ": the recipe has no [data.train] to train on");
  Config train = recipe.at("train").validate(train_schema(), {});
  SSLAB_CHECK(train.get_string("precision") != "bf16" || train.get_string("device") == "cuda",
              train.locate("precision"), " is \"bf16\": bf16 autocast needs train.device = \"cuda\"");
  const int64_t batch = train.get_int("batch_size"), accumulate = train.get_int("accumulate");
  SSLAB_CHECK(batch % accumulate == 0, train.locate("accumulate"), " (", accumulate, ") must divide train.batch_size (",
              batch, ")");
}

}  // namespace sslab
