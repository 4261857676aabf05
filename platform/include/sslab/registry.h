// Registries: name -> factory for every kind of component.
//
// A plugin fills them from its register callback through a Registrar; the
// platform owns them (one set per process, in libsslab.so). Factories take the
// component's validated recipe table (a Config) and the BuildContext.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sslab/export.h"
#include "sslab/recipe.h"

namespace sslab {

class Dataset;
class Transform;
class Tokenizer;
class Encoder;
class Head;
class Objective;
class Evaluator;
class BuildContext;

enum class ComponentKind { Dataset, Transform, Tokenizer, Encoder, Head, Objective, Evaluator };
SSLAB_API const char* kind_name(ComponentKind kind);  // "dataset", "encoder", ...
SSLAB_API std::vector<ComponentKind> all_kinds();

template <typename T>
using Factory = std::function<std::shared_ptr<T>(const Config&, BuildContext&)>;

// What every registry entry carries, whatever its kind.
struct ComponentInfo {
  std::string name;    // "<plugin>.<thing>", e.g. "vision.mae"
  std::string doc;     // one line
  std::string plugin;  // owning plugin name ("sslab" for built-ins)
  std::string file;    // the plugin's file ("" for built-ins)
  Schema schema;       // the keys its recipe table may hold
};

template <typename T>
struct Entry {
  ComponentInfo info;
  Factory<T> factory;
};

// One registry: a name -> Entry map with clear errors.
template <typename T>
class Registry {
 public:
  explicit Registry(ComponentKind kind) : kind_(kind) {}
  ComponentKind kind() const { return kind_; }

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // The entry, or a UserError "unknown encoder 'x' (where); did you mean 'y'? known: ..."
  const Entry<T>& at(const std::string& name, const std::string& where = "") const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw_unknown(name, where);
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.first);
    return out;
  }
  const std::map<std::string, Entry<T>>& entries() const { return entries_; }
  // Adds an entry; the caller (the plugin host) checks for duplicates first.
  void add(Entry<T> entry) {
    std::string name = entry.info.name;
    entries_.emplace(name, std::move(entry));
  }

 private:
  [[noreturn]] void throw_unknown(const std::string& name, const std::string& where) const;
  ComponentKind kind_;
  std::map<std::string, Entry<T>> entries_;
};

[[noreturn]] SSLAB_API void throw_unknown_component(ComponentKind kind, const std::string& name,
                                                    const std::string& where,
                                                    const std::vector<std::string>& known);

template <typename T>
void Registry<T>::throw_unknown(const std::string& name, const std::string& where) const {
  throw_unknown_component(kind_, name, where, names());
}

// A subcommand a plugin adds to the `sslab` command (`sslab tokenizer ...`).
// It receives the arguments after the command name and returns the exit
// code; a UserError escaping it exits with code 2 and its message on one
// line, as for the built-in commands. It prints its own --help.
using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct CommandEntry {
  std::string name;    // the word after `sslab`, e.g. "tokenizer"
  std::string doc;     // one line, for `sslab --help` and `sslab plugins`
  std::string plugin;  // owning plugin name
  std::string file;    // the plugin's file
  CommandFn run;
};

// The names of the sslab command's own subcommands, which no plugin may take.
SSLAB_API const std::vector<std::string>& builtin_command_names();

// All registries of the process.
struct SSLAB_API Registries {
  Registry<Dataset> datasets{ComponentKind::Dataset};
  Registry<Transform> transforms{ComponentKind::Transform};
  Registry<Tokenizer> tokenizers{ComponentKind::Tokenizer};
  Registry<Encoder> encoders{ComponentKind::Encoder};
  Registry<Head> heads{ComponentKind::Head};
  Registry<Objective> objectives{ComponentKind::Objective};
  Registry<Evaluator> evaluators{ComponentKind::Evaluator};
  std::map<std::string, CommandEntry> commands;  // plugin subcommands of `sslab`

  // The ComponentInfo of a registered name of a kind, or nullptr.
  const ComponentInfo* find(ComponentKind kind, const std::string& name) const;
  // Names of one kind.
  std::vector<std::string> names(ComponentKind kind) const;
  // Throws the "unknown X" error when `name` is not registered for `kind`.
  const ComponentInfo& info(ComponentKind kind, const std::string& name, const std::string& where = "") const;
  // The plugin command `name`, or nullptr.
  const CommandEntry* find_command(const std::string& name) const;

  // The process-wide registries (owned by libsslab.so).
  static Registries& global();
};

// Keys every component of a kind accepts besides its own (e.g. an
// objective's weight, an encoder's input).
SSLAB_API Schema common_schema(ComponentKind kind);

// The validated Config of a component table: its registry entry's schema
// merged with the kind's common keys (a component that builds others from
// nested tables, as ssl.paired does, validates them with this).
SSLAB_API Config component_config(const RecipeNode& node, ComponentKind kind, const Registries& registries);

// Handed to a plugin's register callback. Entries are staged and only become
// visible when the whole callback succeeded and no name is a duplicate.
class SSLAB_API Registrar {
 public:
  Registrar(std::string plugin, std::string file) : plugin_(std::move(plugin)), file_(std::move(file)) {}

  void dataset(const std::string& name, const std::string& doc, Schema schema, Factory<Dataset> f);
  void transform(const std::string& name, const std::string& doc, Schema schema, Factory<Transform> f);
  void tokenizer(const std::string& name, const std::string& doc, Schema schema, Factory<Tokenizer> f);
  void encoder(const std::string& name, const std::string& doc, Schema schema, Factory<Encoder> f);
  void head(const std::string& name, const std::string& doc, Schema schema, Factory<Head> f);
  void objective(const std::string& name, const std::string& doc, Schema schema, Factory<Objective> f);
  void evaluator(const std::string& name, const std::string& doc, Schema schema, Factory<Evaluator> f);
  // A subcommand of `sslab`: `sslab <name> args...` calls `run(args)`. Names
  // are one word of lowercase letters, digits and '-', and may not be taken
  // by a built-in command or another plugin.
  void command(const std::string& name, const std::string& doc, CommandFn run);

  const std::string& plugin() const { return plugin_; }
  const std::string& file() const { return file_; }

  // Checks for duplicates (within the staged set and against `into`), then
  // moves every staged entry into `into`. Throws UserError naming the file.
  void commit(Registries& into);
  // Names staged so far, as (kind, name).
  std::vector<std::pair<ComponentKind, std::string>> staged() const;
  // Command names staged so far, in registration order.
  std::vector<std::string> staged_commands() const;

 private:
  ComponentInfo make_info(const std::string& name, const std::string& doc, Schema schema) const;
  std::string plugin_, file_;
  Registries staged_;
  std::vector<std::pair<ComponentKind, std::string>> order_;
  std::vector<std::string> command_order_;
  std::vector<std::string> duplicates_;  // names staged twice
};

}  // namespace sslab
