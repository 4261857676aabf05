// Recipes: TOML experiment descriptions with typed, validated access.
//
// A Recipe is parsed from a file (following `base = "..."` inheritance and
// applying `--set key.path=value` overrides). Each component declares the keys
// it reads in a Schema; Schema::validate() turns a RecipeNode (one table of
// the recipe) into a Config whose getters cannot fail on type. Every error
// names file:line:col and the dotted key, e.g.
//   recipes/x.toml:14:9: train.batch_size must be >= 1, got -4
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sslab/export.h"

namespace sslab {

class RecipeDoc;  // the parsed TOML tree (toml++ stays out of public headers)

enum class ValueType { Integer, Float, Boolean, String, IntArray, FloatArray, StringArray, Table, TableArray };

SSLAB_API const char* type_name(ValueType type);

// A default value for a key; monostate means "required".
using DefaultValue = std::variant<std::monostate, int64_t, double, bool, std::string,
                                  std::vector<int64_t>, std::vector<double>,
                                  std::vector<std::string>>;

struct KeySpec {
  std::string name;
  ValueType type = ValueType::String;
  std::string doc;
  DefaultValue default_value;       // monostate: required (unless optional)
  bool optional = false;            // may be absent without a default
  std::optional<double> min, max;   // inclusive bounds (each element of arrays)
  bool min_exclusive = false;
  std::vector<std::string> choices; // allowed strings
  std::optional<size_t> length;     // exact array length
  bool path = false;                // a file or folder, relative to the recipe that set it
};

// The "no default" marker: s.string("manifest", required, "...").
struct Required {};
inline constexpr Required required{};

// The keys one table may hold. Built fluently:
//   Schema s;
//   s.integer("batch_size", 256, "samples per step").min(1);
class SSLAB_API Schema {
 public:
  class Key {
   public:
    explicit Key(KeySpec& spec) : spec_(spec) {}
    Key& min(double v) { spec_.min = v; spec_.min_exclusive = false; return *this; }
    Key& greater_than(double v) { spec_.min = v; spec_.min_exclusive = true; return *this; }
    Key& max(double v) { spec_.max = v; return *this; }
    Key& choices(std::vector<std::string> c) { spec_.choices = std::move(c); return *this; }
    Key& length(size_t n) { spec_.length = n; return *this; }
    Key& optional() { spec_.optional = true; return *this; }
    // The recipe must give it (no default).
    Key& required() { spec_.default_value = std::monostate{}; return *this; }
    // A file or folder: Config::get_path (and Settings) resolve it against
    // the folder of the recipe file that set it.
    Key& path() { spec_.path = true; return *this; }
    const KeySpec& spec() const { return spec_; }

   private:
    KeySpec& spec_;
  };

  // Plain literals are defaults (s.integer("size", 1000, ...), s.string("mode",
  // "fast", ...)); `required` marks a key the recipe must give.
  Key integer(const std::string& name, int64_t def, const std::string& doc);
  Key number(const std::string& name, double def, const std::string& doc);
  Key boolean(const std::string& name, bool def, const std::string& doc);
  Key string(const std::string& name, const char* def, const std::string& doc);
  Key string(const std::string& name, std::string def, const std::string& doc);
  Key integers(const std::string& name, std::vector<int64_t> def, const std::string& doc);
  Key numbers(const std::string& name, std::vector<double> def, const std::string& doc);
  Key strings(const std::string& name, std::vector<std::string> def, const std::string& doc);
  Key integer(const std::string& name, Required, const std::string& doc);
  Key number(const std::string& name, Required, const std::string& doc);
  Key boolean(const std::string& name, Required, const std::string& doc);
  Key string(const std::string& name, Required, const std::string& doc);
  Key integers(const std::string& name, Required, const std::string& doc);
  Key numbers(const std::string& name, Required, const std::string& doc);
  Key strings(const std::string& name, Required, const std::string& doc);
  // Any type with an explicit DefaultValue (monostate: required).
  Key add(const std::string& name, ValueType type, DefaultValue def, const std::string& doc);
  // A nested table or array of tables, validated by whoever reads it.
  Key table(const std::string& name, const std::string& doc);
  Key tables(const std::string& name, const std::string& doc);

  // Adds every key of another schema (e.g. common keys of a component kind).
  Schema& merge(const Schema& other);

  const KeySpec* find(const std::string& name) const;
  const std::vector<KeySpec>& keys() const { return keys_; }

 private:
  std::vector<KeySpec> keys_;
};

class Config;

// One table of a recipe (or a missing one), with its dotted path.
class SSLAB_API RecipeNode {
 public:
  RecipeNode(std::shared_ptr<const RecipeDoc> doc, std::string path);

  const std::string& path() const { return path_; }  // dotted, e.g. "encoders.image"
  bool exists() const;                               // the table is present
  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;             // in file order
  // Child table (may not exist) and the tables of an array of tables.
  RecipeNode child(const std::string& key) const;
  std::vector<RecipeNode> table_array(const std::string& key) const;
  // The string value of `key` (e.g. "type"), failing clearly if absent/mistyped.
  std::string required_string(const std::string& key) const;
  // "file:line:col" of a key's value (of the table itself when key is empty).
  std::string where(const std::string& key = "") const;
  // "file:line:col: dotted.key" prefix for messages.
  std::string locate(const std::string& key) const;
  // The folder of the file that set `key` (for relative paths).
  std::string folder_of(const std::string& key) const;

  // Checks every key against the schema: unknown keys (with a suggestion),
  // types, ranges, choices, required keys. Keys in `ignore` are skipped.
  Config validate(const Schema& schema, const std::vector<std::string>& ignore = {"type"}) const;

  const RecipeDoc& doc() const { return *doc_; }

 private:
  friend class Config;
  std::shared_ptr<const RecipeDoc> doc_;
  std::string path_;
};

// A validated table: getters return the value or the schema's default.
class SSLAB_API Config {
 public:
  Config(RecipeNode node, Schema schema) : node_(std::move(node)), schema_(std::move(schema)) {}

  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // accepts integers
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<int64_t> get_ints(const std::string& key) const;
  std::vector<double> get_floats(const std::string& key) const;
  std::vector<std::string> get_strings(const std::string& key) const;
  // Present in the recipe (not defaulted).
  bool has(const std::string& key) const { return node_.has(key); }
  // A path value resolved against the folder of the recipe file that set it.
  std::string get_path(const std::string& key) const;
  // A list of path values, each resolved as get_path resolves one.
  std::vector<std::string> get_paths(const std::string& key) const;

  const RecipeNode& node() const { return node_; }
  const Schema& schema() const { return schema_; }
  // Error message prefix for a key: "file:line:col: dotted.key".
  std::string locate(const std::string& key) const { return node_.locate(key); }

 private:
  const KeySpec& spec(const std::string& key, ValueType type) const;
  RecipeNode node_;
  Schema schema_;
};

// A whole recipe: parsed, inherited, overridden.
class SSLAB_API Recipe {
 public:
  // Parses `file`, follows `base` chains, applies overrides of the form
  // "dotted.key=toml-value" (a bare word that is not TOML is taken as a string).
  static Recipe load(const std::string& file, const std::vector<std::string>& overrides = {});
  static Recipe parse_string(const std::string& text, const std::string& source_name,
                             const std::vector<std::string>& overrides = {});
  // Reads a resolved recipe written by to_toml() (e.g. from a checkpoint).

  RecipeNode root() const { return RecipeNode(doc_, ""); }
  RecipeNode at(const std::string& dotted) const;
  const std::string& file() const { return file_; }
  // The name of the recipe: `name` key, else the file stem.
  std::string name() const;
  // The fully resolved recipe as TOML text.
  std::string to_toml() const;

 private:
  std::shared_ptr<RecipeDoc> doc_;
  std::string file_;
};

// Closest candidate by edit distance, or "" when nothing is close.
SSLAB_API std::string nearest_match(const std::string& word, const std::vector<std::string>& candidates);
// "Did you mean 'x'? Known: a, b, c" helper used by registries and recipes.
SSLAB_API std::string suggestion_text(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace sslab
