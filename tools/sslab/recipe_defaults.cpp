// sslab check --print --defaults: the resolved recipe with every default the
// run will use written out, each marked "# default".

#include "recipe_defaults.h"

#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "sslab/host/federated.h"
#include "sslab/host/protocols.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/registry.h"

namespace sslab::cli {

namespace {

struct ToNode {
  template <typename T>
  static toml::array array(const std::vector<T>& v) {
    toml::array a;
    for (const auto& x : v) a.push_back(x);
    return a;
  }
};

// Inserts the defaults `schema` has for keys `table` lacks; records their paths.
void fill(toml::table& table, const Schema& schema, const std::string& path, std::set<std::string>& added) {
  for (const auto& k : schema.keys()) {
    if (table.contains(k.name)) continue;
    const DefaultValue& d = k.default_value;
    bool inserted = true;
    if (auto v = std::get_if<int64_t>(&d)) table.insert(k.name, *v);
    else if (auto v = std::get_if<double>(&d)) table.insert(k.name, *v);
    else if (auto v = std::get_if<bool>(&d)) table.insert(k.name, *v);
    else if (auto v = std::get_if<std::string>(&d)) table.insert(k.name, *v);
    else if (auto v = std::get_if<std::vector<int64_t>>(&d)) table.insert(k.name, ToNode::array(*v));
    else if (auto v = std::get_if<std::vector<double>>(&d)) table.insert(k.name, ToNode::array(*v));
    else if (auto v = std::get_if<std::vector<std::string>>(&d)) table.insert(k.name, ToNode::array(*v));
    else inserted = false;  // required, optional without a default, or a nested table
    if (inserted) added.insert(path + "." + k.name);
  }
}

// A component's table: its registry schema and the common keys of its kind.
void fill_component(toml::table& table, ComponentKind kind, const std::string& path, std::set<std::string>& added) {
  const toml::node* type = table.get("type");
  if (!type || !type->is_string()) return;
  const ComponentInfo* info = Registries::global().find(kind, type->as_string()->get());
  if (!info) return;
  Schema schema = info->schema;
  schema.merge(common_schema(kind));
  fill(table, schema, path, added);
}

toml::table& section(toml::table& root, const std::string& name) {
  if (!root.contains(name)) root.insert(name, toml::table{});
  return *root.get(name)->as_table();
}

bool bare(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string key_text(const std::string& key) { return bare(key) ? key : "\"" + key + "\""; }

bool is_table_array(const toml::node& n) { return n.is_array() && !n.as_array()->empty() && n.as_array()->is_array_of_tables(); }

void emit(const toml::table& table, const std::string& path, const std::string& header, bool array_item,
          const std::set<std::string>& added, std::ostream& out) {
  bool has_values = false;
  for (auto&& [k, v] : table) has_values |= !v.is_table() && !is_table_array(v);
  bool has_children = false;
  for (auto&& [k, v] : table) has_children |= v.is_table() || is_table_array(v);
  if (!header.empty() && (has_values || !has_children || array_item))
    out << "\n" << (array_item ? "[[" : "[") << header << (array_item ? "]]" : "]") << "\n";
  for (auto&& [k, v] : table) {
    if (v.is_table() || is_table_array(v)) continue;
    std::string key(k.str());
    out << key_text(key) << " = ";
    v.visit([&](auto&& node) { out << node; });
    if (added.count(path + "." + key)) out << "  # default";
    out << "\n";
  }
  for (auto&& [k, v] : table) {
    std::string key(k.str());
    std::string child_header = header.empty() ? key_text(key) : header + "." + key_text(key);
    std::string child_path = path.empty() ? key : path + "." + key;
    if (v.is_table()) {
      emit(*v.as_table(), child_path, child_header, false, added, out);
    } else if (is_table_array(v)) {
      const toml::array& a = *v.as_array();
      for (size_t i = 0; i < a.size(); ++i)
        emit(*a[i].as_table(), child_path + "." + std::to_string(i), child_header, true, added, out);
    }
  }
}

}  // namespace

const std::vector<PlatformSection>& platform_sections() {
  static const std::vector<PlatformSection> all = {
      {"plugins", "plugins the recipe loads", plugins_schema},
      {"train", "the training run: steps, batch, optimizer, schedule, device, loader", train_schema},
      {"log", "metrics.jsonl, TensorBoard and the progress display", log_schema},
      {"checkpoint", "when checkpoints are written and how many are kept", checkpoint_schema},
      {"eval", "evaluation after training and by `sslab eval`: which protocols, and the frozen probes", eval_schema},
      {"eval.finetune", "the fine-tuning protocol (eval.protocols has \"finetune\")", finetune_schema},
      {"eval.fewshot", "the few-shot protocol (eval.protocols has \"fewshot\")", fewshot_schema},
      {"distributed", "data-parallel runs under torchrun (c10d)", distributed_schema},
      {"federated", "federated training over simulated clients: partition, rounds, aggregation (only when present)",
       federated_schema},
  };
  return all;
}

std::string recipe_with_defaults(const Recipe& recipe) {
  toml::table root = toml::parse(recipe.to_toml(), recipe.file());
  std::set<std::string> added;
  for (const PlatformSection& s : platform_sections()) {
    std::string name = s.name;
    // [federated] changes what the run is: filled only when the recipe has it.
    if (name == "federated" && !root.contains("federated")) continue;
    if (name.rfind("eval.", 0) != 0) fill(section(root, name), s.schema(), name, added);
  }
  toml::table& eval = section(root, "eval");
  if (const toml::array* protocols = eval.get("protocols") ? eval.get("protocols")->as_array() : nullptr) {
    for (const toml::node& p : *protocols) {
      if (!p.is_string()) continue;
      std::string name = p.as_string()->get();
      if (name == "finetune") fill(section(eval, "finetune"), finetune_schema(), "eval.finetune", added);
      if (name == "fewshot") fill(section(eval, "fewshot"), fewshot_schema(), "eval.fewshot", added);
    }
  }
  struct Named {
    const char* name;
    ComponentKind kind;
  };
  for (const Named& n : {Named{"data", ComponentKind::Dataset}, Named{"tokenizers", ComponentKind::Tokenizer},
                         Named{"encoders", ComponentKind::Encoder}, Named{"heads", ComponentKind::Head}}) {
    toml::table* tables = root.get(n.name) ? root.get(n.name)->as_table() : nullptr;
    if (!tables) continue;
    for (auto&& [k, v] : *tables)
      if (v.is_table()) fill_component(*v.as_table(), n.kind, std::string(n.name) + "." + std::string(k.str()), added);
  }
  for (const Named& n : {Named{"objectives", ComponentKind::Objective}, Named{"evaluators", ComponentKind::Evaluator}}) {
    toml::array* list = root.get(n.name) ? root.get(n.name)->as_array() : nullptr;
    if (!list) continue;
    for (size_t i = 0; i < list->size(); ++i)
      if ((*list)[i].is_table())
        fill_component(*(*list)[i].as_table(), n.kind, std::string(n.name) + "." + std::to_string(i), added);
  }
  if (toml::table* transforms = root.get("transforms") ? root.get("transforms")->as_table() : nullptr) {
    for (auto&& [k, v] : *transforms) {
      toml::array* list = v.as_array();
      if (!list) continue;
      for (size_t i = 0; i < list->size(); ++i)
        if ((*list)[i].is_table())
          fill_component(*(*list)[i].as_table(), ComponentKind::Transform,
                         "transforms." + std::string(k.str()) + "." + std::to_string(i), added);
    }
  }
  std::ostringstream out;
  out << "# " << recipe.file() << " resolved; \"# default\" marks a value the recipe does not set\n";
  emit(root, "", "", false, added, out);
  return out.str();
}

}  // namespace sslab::cli
