// sslab doc: the keys of a recipe section or component, from its Schema.
//
//   sslab doc NAME [--json]            one platform section or component
//   sslab doc --all [--markdown|--json] every one (docs/reference.md is
//                                       `sslab doc --all --markdown`)

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "recipe_defaults.h"
#include "sslab/host/plugin_host.h"
#include "sslab/host/protocols.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/registry.h"

namespace sslab::cli {

namespace {

// One thing a recipe table can be: a platform section or a registered component.
struct Topic {
  std::string name;    // "train", "eval.finetune", "vision.vit"
  std::string kind;    // "section", "dataset", "encoder", ...
  std::string plugin;  // "" for sections
  std::string file;    // the plugin's file ("" for sections and built-ins)
  std::string doc;
  std::string table;   // how the table is written: "[train]", "[encoders.vision]", "[[objectives]]"
  std::vector<std::pair<KeySpec, bool>> keys;  // (key, common to every component of the kind)
};

std::vector<Topic> sections() {
  std::vector<Topic> out;
  for (const PlatformSection& s : platform_sections()) {
    Topic t{s.name, "section", "", "", s.doc, std::string("[") + s.name + "]", {}};
    const Schema schema = s.schema();  // kept alive: keys() is a reference into it
    for (const auto& k : schema.keys()) t.keys.emplace_back(k, false);
    out.push_back(std::move(t));
  }
  return out;
}

std::string table_of(ComponentKind kind, const std::string& plugin) {
  switch (kind) {
    case ComponentKind::Dataset: return "[data.train]";
    case ComponentKind::Transform: return "[[transforms.\"<input key>\"]]";
    case ComponentKind::Tokenizer: return "[tokenizers." + plugin + "]";
    case ComponentKind::Encoder: return "[encoders." + plugin + "]";
    case ComponentKind::Head: return "[heads." + plugin + "]";
    case ComponentKind::Objective: return "[[objectives]]";
    case ComponentKind::Evaluator: return "[[evaluators]]";
  }
  return "";
}

std::vector<Topic> components(const Registries& reg) {
  std::vector<Topic> out;
  for (ComponentKind kind : all_kinds()) {
    Schema common = common_schema(kind);
    for (const auto& name : reg.names(kind)) {
      const ComponentInfo* info = reg.find(kind, name);
      Topic t{name, kind_name(kind), info->plugin, info->file, info->doc, table_of(kind, info->plugin), {}};
      for (const auto& k : info->schema.keys()) t.keys.emplace_back(k, false);
      for (const auto& k : common.keys())
        if (!info->schema.find(k.name)) t.keys.emplace_back(k, true);
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string toml_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// "integer", "array of strings" (type_name says "an integer" for messages).
std::string type_text(ValueType type) {
  std::string t = type_name(type);
  if (t.rfind("a ", 0) == 0) return t.substr(2);
  if (t.rfind("an ", 0) == 0) return t.substr(3);
  return t;
}

// A default value as TOML.
struct TomlValue {
  std::string operator()(std::monostate) const { return ""; }
  std::string operator()(int64_t v) const { return std::to_string(v); }
  std::string operator()(double v) const { return toml_number(v); }
  std::string operator()(bool v) const { return v ? "true" : "false"; }
  std::string operator()(const std::string& v) const { return toml_string(v); }
  template <typename T>
  std::string operator()(const std::vector<T>& v) const {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + (*this)(v[i]);
    return out + "]";
  }
};

// The default as a TOML value; "" when the key has none (required or optional).
std::string toml_default(const KeySpec& k) { return std::visit(TomlValue{}, k.default_value); }

bool is_required(const KeySpec& k) {
  return std::holds_alternative<std::monostate>(k.default_value) && !k.optional && k.type != ValueType::Table &&
         k.type != ValueType::TableArray;
}

std::string allowed(const KeySpec& k) {
  std::string out;
  auto num = [](double v) {
    std::string s = toml_number(v);
    if (s.size() > 2 && s.substr(s.size() - 2) == ".0") s.resize(s.size() - 2);
    return s;
  };
  if (!k.choices.empty()) {
    for (size_t i = 0; i < k.choices.size(); ++i) out += (i ? " | " : "") + toml_string(k.choices[i]);
  } else if (k.min && k.max) {
    out = (k.min_exclusive ? "(" : "[") + num(*k.min) + ", " + num(*k.max) + "]";
  } else if (k.min) {
    out = (k.min_exclusive ? "> " : ">= ") + num(*k.min);
  } else if (k.max) {
    out = "<= " + num(*k.max);
  }
  if (k.length) out += (out.empty() ? "" : ", ") + std::to_string(*k.length) + " values";
  if (k.path) out += (out.empty() ? "" : ", ") + std::string("path");
  return out;
}

std::string default_text(const KeySpec& k) {
  if (is_required(k)) return "required";
  std::string d = toml_default(k);
  return d.empty() ? "(none)" : d;
}

std::string doc_text(const std::pair<KeySpec, bool>& key, const std::string& kind) {
  return key.second ? "(every " + kind + ") " + key.first.doc : key.first.doc;
}

// An example table with every default filled in; required keys are
// commented placeholders.
std::string example(const Topic& t) {
  std::ostringstream out;
  out << t.table << "\n";
  if (t.kind != "section") out << "type = " << toml_string(t.name) << "\n";
  for (const auto& [k, common] : t.keys) {
    if (k.type == ValueType::Table || k.type == ValueType::TableArray) {
      out << "# " << k.name << ": " << (k.type == ValueType::Table ? "a table" : "an array of tables") << " (see "
          << k.doc << ")\n";
      continue;
    }
    std::string d = toml_default(k);
    if (is_required(k))
      out << "# " << k.name << " = <" << type_text(k.type) << ">  # required\n";
    else if (d.empty())
      out << "# " << k.name << " = <" << type_text(k.type) << ">  # optional, no default\n";
    else
      out << k.name << " = " << d << "\n";
  }
  return out.str();
}

nlohmann::ordered_json to_json(const Topic& t) {
  nlohmann::ordered_json j = {{"name", t.name}, {"kind", t.kind}};
  if (!t.plugin.empty()) j["plugin"] = t.plugin;
  if (!t.file.empty()) j["file"] = t.file;
  j["doc"] = t.doc;
  j["table"] = t.table;
  j["keys"] = nlohmann::ordered_json::array();
  for (const auto& [k, common] : t.keys) {
    nlohmann::ordered_json key = {{"name", k.name}, {"type", type_text(k.type)}, {"required", is_required(k)}};
    std::string d = toml_default(k);
    key["default"] = d.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d);
    if (k.min) key[k.min_exclusive ? "greater_than" : "min"] = *k.min;
    if (k.max) key["max"] = *k.max;
    if (!k.choices.empty()) key["choices"] = k.choices;
    if (k.length) key["length"] = *k.length;
    if (k.optional) key["optional"] = true;
    if (k.path) key["path"] = true;
    if (common) key["common"] = true;
    key["doc"] = k.doc;
    j["keys"].push_back(std::move(key));
  }
  j["example"] = example(t);
  return j;
}

std::string pad(const std::string& s, size_t width) { return s + std::string(s.size() < width ? width - s.size() : 1, ' '); }

void print_text(const Topic& t, std::ostream& out) {
  out << t.name << " (" << t.kind;
  if (!t.plugin.empty()) out << ", plugin " << t.plugin << (t.file.empty() ? "" : ": " + t.file);
  out << ")\n  " << t.doc << "\n\n";
  size_t wn = 4, wt = 4, wd = 7, wa = 7;
  for (const auto& [k, c] : t.keys) {
    wn = std::max(wn, k.name.size());
    wt = std::max(wt, std::string(type_text(k.type)).size());
    wd = std::max(wd, std::min<size_t>(default_text(k).size(), 24));
    wa = std::max(wa, std::min<size_t>(allowed(k).size(), 28));
  }
  if (t.keys.empty()) out << "  (no keys)\n";
  else
    out << "  " << pad("key", wn + 2) << pad("type", wt + 2) << pad("default", wd + 2) << pad("allowed", wa + 2)
        << "description\n";
  for (const auto& key : t.keys) {
    const KeySpec& k = key.first;
    out << "  " << pad(k.name, wn + 2) << pad(type_text(k.type), wt + 2) << pad(default_text(k), wd + 2)
        << pad(allowed(k), wa + 2) << doc_text(key, t.kind) << "\n";
  }
  out << "\nexample:\n";
  std::istringstream lines(example(t));
  for (std::string line; std::getline(lines, line);) out << "  " << line << "\n";
}

std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

void print_markdown(const std::vector<Topic>& all, std::ostream& out) {
  out << "# Recipe reference\n\n"
         "<!-- Generated by `sslab doc --all --markdown` from the schemas the platform and the first-party\n"
         "     plugins declare; the test DocReference.MatchesTheBuild fails when this file is stale. -->\n\n"
         "Every key a recipe table may hold: its type, default, allowed values and meaning. The same for one\n"
         "name on the command line: `sslab doc NAME` (for example `sslab doc vision.vit`, `sslab doc train`),\n"
         "with an example table; `--json` for tools. Keys marked *(every KIND)* are the platform's, accepted by\n"
         "every component of that kind. A required key has no default; `(none)` means optional without one.\n";
  std::string kind;
  for (const auto& t : all) {
    if (t.kind != kind) {
      kind = t.kind;
      out << "\n## " << (kind == "section" ? std::string("Platform sections") : kind + "s") << "\n";
    }
    out << "\n### `" << t.name << "`" << (t.plugin.empty() ? "" : " (plugin " + t.plugin + ")") << "\n\n"
        << md_cell(t.doc) << ".\n\nTable: `" << t.table << "`\n\n";
    if (t.keys.empty()) {
      out << "No keys.\n";
      continue;
    }
    out << "| key | type | default | allowed | description |\n|---|---|---|---|---|\n";
    for (const auto& key : t.keys) {
      const KeySpec& k = key.first;
      std::string a = allowed(k);
      out << "| `" << k.name << "` | " << type_text(k.type) << " | `" << md_cell(default_text(k)) << "` | "
          << (a.empty() ? "" : "`" + md_cell(a) + "`") << " | "
          << md_cell(key.second ? "*(every " + t.kind + ")* " + k.doc : k.doc) << " |\n";
    }
  }
}

}  // namespace

int cmd_doc(const Args& args) {
  po::options_description opts(
      "sslab doc NAME [--json] | sslab doc --all [--markdown | --json]\n"
      "NAME: a platform section (train, eval, eval.finetune, ...) or a component (vision.vit, ssl.infonce, ...)");
  std::string name;
  bool json = false, markdown = false, all = false;
  std::vector<std::string> dirs;
  opts.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print JSON")(
      "markdown", po::bool_switch(&markdown), "with --all: the Markdown reference (docs/reference.md)")(
      "all", po::bool_switch(&all), "every platform section and every component of the loaded plugins")(
      "path", po::value(&dirs), "extra plugin folder to search (repeatable)")("name", po::value(&name),
                                                                               "section or component");
  po::variables_map vm;
  if (!parse_args(args, opts, "name", vm)) return 0;
  if (all == !name.empty()) throw po::error("give a NAME or --all");
  if (markdown && !all) throw po::error("--markdown goes with --all");
  if (markdown && json) throw po::error("--markdown and --json exclude each other");
  Registries& reg = Registries::global();
  PluginHost host(reg);
  host.discover(dirs);
  std::vector<Topic> topics = sections();
  for (auto& t : components(reg)) topics.push_back(std::move(t));
  if (all) {
    if (markdown) {
      print_markdown(topics, std::cout);
    } else if (json) {
      nlohmann::ordered_json j = nlohmann::ordered_json::array();
      for (const auto& t : topics) j.push_back(to_json(t));
      std::cout << j.dump(2) << "\n";
    } else {
      for (size_t i = 0; i < topics.size(); ++i) print_text(topics[i], std::cout << (i ? "\n" : ""));
    }
    return 0;
  }
  for (const auto& t : topics) {
    if (t.name != name) continue;
    if (json)
      std::cout << to_json(t).dump(2) << "\n";
    else
      print_text(t, std::cout);
    return 0;
  }
  std::vector<std::string> known;
  for (const auto& t : topics) known.push_back(t.name);
  throw UserError(str("no section or component named '", name, "'; ", suggestion_text(name, known),
                      " (sslab doc --all lists them)"));
}

}  // namespace sslab::cli
