#include "sslab/registry.h"

#include "sslab/host/evaluation.h"

#include <algorithm>

#include "sslab/error.h"

namespace sslab {

const char* kind_name(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::Dataset: return "dataset";
    case ComponentKind::Transform: return "transform";
    case ComponentKind::Tokenizer: return "tokenizer";
    case ComponentKind::Encoder: return "encoder";
    case ComponentKind::Head: return "head";
    case ComponentKind::Objective: return "objective";
    case ComponentKind::Evaluator: return "evaluator";
  }
  return "?";
}

std::vector<ComponentKind> all_kinds() {
  return {ComponentKind::Dataset, ComponentKind::Transform, ComponentKind::Tokenizer, ComponentKind::Encoder,
          ComponentKind::Head,    ComponentKind::Objective, ComponentKind::Evaluator};
}

const std::vector<std::string>& builtin_command_names() {
  static const std::vector<std::string> names = {"plugins", "check", "train", "eval", "doc", "export", "embed", "sweep", "compare", "report", "help"};
  return names;
}

void throw_unknown_component(ComponentKind kind, const std::string& name, const std::string& where,
                             const std::vector<std::string>& known) {
  std::string prefix = where.empty() ? std::string() : where + ": ";
  // "<plugin>.<thing>": when nothing of this kind comes from that plugin, it
  // is most likely not loaded.
  std::string hint;
  size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    std::string plugin = name.substr(0, dot + 1);
    bool from_plugin = std::any_of(known.begin(), known.end(),
                                   [&](const std::string& k) { return k.compare(0, plugin.size(), plugin) == 0; });
    if (!from_plugin)
      hint = str(" (component names start with their plugin's name: add \"", name.substr(0, dot),
                 "\" to [plugins] load)");
  } else if (known.empty()) {
    hint = " (is the plugin that provides it listed in [plugins] load?)";
  }
  throw UserError(str(prefix, "unknown ", kind_name(kind), " '", name, "'; ", suggestion_text(name, known), hint));
}

template <typename F>
static auto with_registry(Registries& r, ComponentKind kind, F&& f) {
  switch (kind) {
    case ComponentKind::Dataset: return f(r.datasets);
    case ComponentKind::Transform: return f(r.transforms);
    case ComponentKind::Tokenizer: return f(r.tokenizers);
    case ComponentKind::Encoder: return f(r.encoders);
    case ComponentKind::Head: return f(r.heads);
    case ComponentKind::Objective: return f(r.objectives);
    case ComponentKind::Evaluator: return f(r.evaluators);
  }
  throw InternalError("bad component kind");
}

const ComponentInfo* Registries::find(ComponentKind kind, const std::string& name) const {
  return with_registry(const_cast<Registries&>(*this), kind, [&](auto& reg) -> const ComponentInfo* {
    return reg.contains(name) ? &reg.at(name).info : nullptr;
  });
}

std::vector<std::string> Registries::names(ComponentKind kind) const {
  return with_registry(const_cast<Registries&>(*this), kind, [](auto& reg) { return reg.names(); });
}

const ComponentInfo& Registries::info(ComponentKind kind, const std::string& name, const std::string& where) const {
  const ComponentInfo* i = find(kind, name);
  if (!i) throw_unknown_component(kind, name, where, names(kind));
  return *i;
}

const CommandEntry* Registries::find_command(const std::string& name) const {
  auto it = commands.find(name);
  return it == commands.end() ? nullptr : &it->second;
}

Registries& Registries::global() {
  static Registries registries;
  // The host's own components (plugin name "sslab"), registered once, in one place.
  static const bool builtins = [] {
    Registrar r("sslab", "");
    register_host_components(r);
    r.commit(registries);
    return true;
  }();
  (void)builtins;
  return registries;
}

// ---------------------------------------------------------------- Registrar

ComponentInfo Registrar::make_info(const std::string& name, const std::string& doc, Schema schema) const {
  SSLAB_CHECK(!name.empty(), file_, ": plugin '", plugin_, "' registers a component with an empty name");
  return ComponentInfo{name, doc, plugin_, file_, std::move(schema)};
}

#define SSLAB_REGISTRAR_METHOD(method, member, KIND, Type)                                             \
  void Registrar::method(const std::string& name, const std::string& doc, Schema schema, Factory<Type> f) { \
    if (staged_.member.contains(name)) duplicates_.push_back(std::string(kind_name(KIND)) + " '" + name + "'"); \
    staged_.member.add(Entry<Type>{make_info(name, doc, std::move(schema)), std::move(f)});               \
    order_.emplace_back(KIND, name);                                                                      \
  }
SSLAB_REGISTRAR_METHOD(dataset, datasets, ComponentKind::Dataset, Dataset)
SSLAB_REGISTRAR_METHOD(transform, transforms, ComponentKind::Transform, Transform)
SSLAB_REGISTRAR_METHOD(tokenizer, tokenizers, ComponentKind::Tokenizer, Tokenizer)
SSLAB_REGISTRAR_METHOD(encoder, encoders, ComponentKind::Encoder, Encoder)
SSLAB_REGISTRAR_METHOD(head, heads, ComponentKind::Head, Head)
SSLAB_REGISTRAR_METHOD(objective, objectives, ComponentKind::Objective, Objective)
SSLAB_REGISTRAR_METHOD(evaluator, evaluators, ComponentKind::Evaluator, Evaluator)
#undef SSLAB_REGISTRAR_METHOD

void Registrar::command(const std::string& name, const std::string& doc, CommandFn run) {
  bool word = !name.empty() && name.front() != '-' &&
              std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
              });
  SSLAB_CHECK(word, file_, ": plugin '", plugin_, "' registers command '", name,
              "': a command name is one word of lowercase letters, digits and '-'");
  SSLAB_CHECK(run, file_, ": plugin '", plugin_, "' registers command '", name, "' without a function");
  if (staged_.commands.count(name)) duplicates_.push_back("command '" + name + "'");
  staged_.commands.emplace(name, CommandEntry{name, doc, plugin_, file_, std::move(run)});
  command_order_.push_back(name);
}

std::vector<std::pair<ComponentKind, std::string>> Registrar::staged() const { return order_; }
std::vector<std::string> Registrar::staged_commands() const { return command_order_; }

void Registrar::commit(Registries& into) {
  SSLAB_CHECK(duplicates_.empty(), file_, ": plugin '", plugin_, "' registers ", duplicates_.front(), " twice");
  for (const auto& [kind, name] : order_) {
    if (const ComponentInfo* existing = into.find(kind, name)) {
      throw UserError(str(file_, ": plugin '", plugin_, "' registers ", kind_name(kind), " '", name,
                          "', which is already registered by plugin '", existing->plugin, "'",
                          existing->file.empty() ? std::string() : " (" + existing->file + ")"));
    }
  }
  const auto& builtins = builtin_command_names();
  for (const auto& name : command_order_) {
    SSLAB_CHECK(std::find(builtins.begin(), builtins.end(), name) == builtins.end(), file_, ": plugin '", plugin_,
                "' registers command '", name, "', which is a built-in sslab command");
    if (const CommandEntry* existing = into.find_command(name)) {
      throw UserError(str(file_, ": plugin '", plugin_, "' registers command '", name,
                          "', which is already registered by plugin '", existing->plugin, "'",
                          existing->file.empty() ? std::string() : " (" + existing->file + ")"));
    }
  }
  for (ComponentKind kind : all_kinds()) {
    with_registry(staged_, kind, [&](auto& from) {
      with_registry(into, kind, [&](auto& to) {
        using ToT = std::decay_t<decltype(to)>;
        using FromT = std::decay_t<decltype(from)>;
        if constexpr (std::is_same_v<ToT, FromT>) {
          for (const auto& [name, entry] : from.entries()) to.add(entry);
        }
        return 0;
      });
      return 0;
    });
  }
  for (auto& [name, entry] : staged_.commands) into.commands.emplace(name, std::move(entry));
  order_.clear();
  command_order_.clear();
  staged_ = Registries{};
}

}  // namespace sslab
