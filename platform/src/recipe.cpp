#include "sslab/recipe.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "recipe_doc.h"
#include "sslab/error.h"
#include "sslab/utf8.h"

namespace fs = std::filesystem;

namespace sslab {

// ---------------------------------------------------------------- helpers

const char* type_name(ValueType type) {
  switch (type) {
    case ValueType::Integer: return "an integer";
    case ValueType::Float: return "a number";
    case ValueType::Boolean: return "a boolean";
    case ValueType::String: return "a string";
    case ValueType::IntArray: return "an array of integers";
    case ValueType::FloatArray: return "an array of numbers";
    case ValueType::StringArray: return "an array of strings";
    case ValueType::Table: return "a table";
    case ValueType::TableArray: return "an array of tables";
  }
  return "?";
}

static const char* toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

std::string where_of(const toml::source_region& region) {
  std::string file = region.path ? std::string(*region.path) : std::string("<recipe>");
  if (file.rfind("--set ", 0) == 0) return file;
  if (region.begin.line == 0) return file;
  return str(file, ":", region.begin.line, ":", region.begin.column);
}

std::vector<std::string> RecipeDoc::split(const std::string& dotted) {
  std::vector<std::string> parts;
  if (dotted.empty()) return parts;
  std::string cur;
  bool quoted = false;  // a "quoted" segment may hold dots: transforms."audio.wave"
  for (char c : dotted) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == '.' && !quoted) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// An array index: digits only, and small enough for size_t (a longer run of
// digits is no index of any array, not an exception).
static bool parse_index(const std::string& s, size_t& index) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; })) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), index);
  return ec == std::errc() && end == s.data() + s.size();
}

const toml::node* RecipeDoc::find(const std::string& dotted) const {
  return const_cast<RecipeDoc*>(this)->find(dotted);
}

toml::node* RecipeDoc::find(const std::string& dotted) {
  toml::node* cur = &root;
  for (const auto& seg : split(dotted)) {
    if (auto* tbl = cur->as_table()) {
      cur = tbl->get(seg);
    } else if (auto* arr = cur->as_array()) {
      size_t i = 0;
      cur = parse_index(seg, i) && i < arr->size() ? arr->get(i) : nullptr;
    } else {
      return nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

// A key holding a dot (a batch key such as "audio.wave") is quoted, as in TOML.
static std::string join_key(const std::string& path, const std::string& key) {
  const std::string k = key.find('.') != std::string::npos && key.front() != '"' ? "\"" + key + "\"" : key;
  if (path.empty()) return k;
  if (key.empty()) return path;
  return path + "." + k;
}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // A candidate that contains the word (or its last dotted part) is close too.
    if (d > 0 && (c.find(word) != std::string::npos || word.find(c) != std::string::npos)) d = std::min<size_t>(d, 2);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : std::string();
}

std::string suggestion_text(const std::string& word, const std::vector<std::string>& candidates) {
  std::string out;
  std::string near = nearest_match(word, candidates);
  if (!near.empty()) out += "did you mean '" + near + "'? ";
  if (candidates.empty()) return out + "none are known";
  out += "known: ";
  for (size_t i = 0; i < candidates.size(); ++i) out += (i ? ", " : "") + candidates[i];
  return out;
}

// ---------------------------------------------------------------- Schema

Schema::Key Schema::add(const std::string& name, ValueType type, DefaultValue def, const std::string& doc) {
  auto it = std::find_if(keys_.begin(), keys_.end(), [&](const KeySpec& k) { return k.name == name; });
  if (it == keys_.end()) {
    keys_.push_back(KeySpec{});
    it = keys_.end() - 1;
  }
  if (type == ValueType::Float)
    if (auto* i = std::get_if<int64_t>(&def)) def = static_cast<double>(*i);
  if (type == ValueType::FloatArray)
    if (auto* v = std::get_if<std::vector<int64_t>>(&def)) def = std::vector<double>(v->begin(), v->end());
  it->name = name;
  it->type = type;
  it->default_value = std::move(def);
  it->doc = doc;
  return Key(*it);
}

Schema::Key Schema::integer(const std::string& n, int64_t d, const std::string& doc) { return add(n, ValueType::Integer, d, doc); }
Schema::Key Schema::number(const std::string& n, double d, const std::string& doc) { return add(n, ValueType::Float, d, doc); }
Schema::Key Schema::boolean(const std::string& n, bool d, const std::string& doc) { return add(n, ValueType::Boolean, d, doc); }
Schema::Key Schema::string(const std::string& n, const char* d, const std::string& doc) {
  return add(n, ValueType::String, std::string(d ? d : ""), doc);
}
Schema::Key Schema::string(const std::string& n, std::string d, const std::string& doc) { return add(n, ValueType::String, std::move(d), doc); }
Schema::Key Schema::integers(const std::string& n, std::vector<int64_t> d, const std::string& doc) { return add(n, ValueType::IntArray, std::move(d), doc); }
Schema::Key Schema::numbers(const std::string& n, std::vector<double> d, const std::string& doc) { return add(n, ValueType::FloatArray, std::move(d), doc); }
Schema::Key Schema::strings(const std::string& n, std::vector<std::string> d, const std::string& doc) { return add(n, ValueType::StringArray, std::move(d), doc); }
Schema::Key Schema::integer(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::Integer, {}, doc); }
Schema::Key Schema::number(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::Float, {}, doc); }
Schema::Key Schema::boolean(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::Boolean, {}, doc); }
Schema::Key Schema::string(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::String, {}, doc); }
Schema::Key Schema::integers(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::IntArray, {}, doc); }
Schema::Key Schema::numbers(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::FloatArray, {}, doc); }
Schema::Key Schema::strings(const std::string& n, Required, const std::string& doc) { return add(n, ValueType::StringArray, {}, doc); }
Schema::Key Schema::table(const std::string& n, const std::string& doc) { return add(n, ValueType::Table, {}, doc).optional(); }
Schema::Key Schema::tables(const std::string& n, const std::string& doc) { return add(n, ValueType::TableArray, {}, doc).optional(); }

Schema& Schema::merge(const Schema& other) {
  for (const auto& k : other.keys_) {
    if (!find(k.name)) keys_.push_back(k);
  }
  return *this;
}

const KeySpec* Schema::find(const std::string& name) const {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

// ---------------------------------------------------------------- RecipeNode

RecipeNode::RecipeNode(std::shared_ptr<const RecipeDoc> doc, std::string path)
    : doc_(std::move(doc)), path_(std::move(path)) {}

static const toml::table* as_table(const RecipeDoc& doc, const std::string& path) {
  const toml::node* n = doc.find(path);
  return n ? n->as_table() : nullptr;
}

bool RecipeNode::exists() const { return as_table(*doc_, path_) != nullptr; }

bool RecipeNode::has(const std::string& key) const {
  const toml::table* t = as_table(*doc_, path_);
  return t && t->contains(key);
}

std::vector<std::string> RecipeNode::keys() const {
  std::vector<std::string> out;
  const toml::table* t = as_table(*doc_, path_);
  if (!t) return out;
  std::vector<std::pair<toml::source_position, std::string>> ordered;
  for (auto&& [k, v] : *t) ordered.emplace_back(v.source().begin, std::string(k.str()));
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line : a.first.column < b.first.column;
  });
  for (auto& o : ordered) out.push_back(o.second);
  return out;
}

RecipeNode RecipeNode::child(const std::string& key) const { return RecipeNode(doc_, join_key(path_, key)); }

std::vector<RecipeNode> RecipeNode::table_array(const std::string& key) const {
  std::vector<RecipeNode> out;
  const toml::node* n = doc_->find(join_key(path_, key));
  if (!n) return out;
  const toml::array* arr = n->as_array();
  SSLAB_CHECK(arr && arr->is_array_of_tables(), where(key), ": ", join_key(path_, key),
              " must be an array of tables ([[", join_key(path_, key), "]]), got ", toml_type_name(*n));
  for (size_t i = 0; i < arr->size(); ++i) out.emplace_back(doc_, join_key(path_, key) + "." + std::to_string(i));
  return out;
}

std::string RecipeNode::required_string(const std::string& key) const {
  const toml::node* n = doc_->find(join_key(path_, key));
  SSLAB_CHECK(n, where(), ": ", path_.empty() ? std::string("the recipe") : path_, " needs a '", key, "' key");
  SSLAB_CHECK(n->is_string(), locate(key), " must be a string, got ", toml_type_name(*n));
  return std::string(*n->value<std::string>());
}

std::string RecipeNode::where(const std::string& key) const {
  const toml::node* n = doc_->find(join_key(path_, key));
  if (!n && !key.empty()) n = doc_->find(path_);  // a missing key: point at its table
  if (n && n->source().begin.line != 0) return where_of(n->source());
  return doc_->file.empty() ? std::string("<recipe>") : doc_->file;
}

std::string RecipeNode::locate(const std::string& key) const { return where(key) + ": " + join_key(path_, key); }

std::string RecipeNode::folder_of(const std::string& key) const {
  const toml::node* n = doc_->find(join_key(path_, key));
  if (n && n->source().path) {
    std::string file(*n->source().path);
    if (file.rfind("--set ", 0) != 0 && file != "<string>") return fs::path(file).parent_path().string();
  }
  return fs::current_path().string();
}

static bool element_ok(const toml::node& n, ValueType type) {
  switch (type) {
    case ValueType::IntArray: return n.is_integer();
    case ValueType::FloatArray: return n.is_integer() || n.is_floating_point();
    case ValueType::StringArray: return n.is_string();
    default: return false;
  }
}

static std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

static void check_number(const std::string& loc, const KeySpec& spec, double v) {
  if (spec.type == ValueType::Float || spec.type == ValueType::FloatArray) {
    SSLAB_CHECK(std::isfinite(v), loc, " must be a finite number, got ", number_text(v));
  }
  if (spec.min) {
    if (spec.min_exclusive)
      SSLAB_CHECK(v > *spec.min, loc, " must be > ", number_text(*spec.min), ", got ", number_text(v));
    else
      SSLAB_CHECK(v >= *spec.min, loc, " must be >= ", number_text(*spec.min), ", got ", number_text(v));
  }
  if (spec.max) SSLAB_CHECK(v <= *spec.max, loc, " must be <= ", number_text(*spec.max), ", got ", number_text(v));
}

static double as_number(const toml::node& n) {
  if (n.is_integer()) return static_cast<double>(*n.value<int64_t>());
  return *n.value<double>();
}

Config RecipeNode::validate(const Schema& schema, const std::vector<std::string>& ignore) const {
  const toml::node* self = doc_->find(path_);
  SSLAB_CHECK(!self || self->is_table(), where(), ": ", path_, " must be a table, got ", toml_type_name(*self));
  const toml::table* t = self ? self->as_table() : nullptr;
  std::vector<std::string> known;
  for (const auto& k : schema.keys()) known.push_back(k.name);
  if (t) {
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (std::find(ignore.begin(), ignore.end(), key) != ignore.end()) continue;
      const KeySpec* spec = schema.find(key);
      std::string loc = where_of(k.source().begin.line ? k.source() : v.source()) + ": " + join_key(path_, key);
      SSLAB_CHECK(spec, loc, " is not a known key; ", suggestion_text(key, known));
      loc = locate(key);
      bool ok = false;
      switch (spec->type) {
        case ValueType::Integer: ok = v.is_integer(); break;
        case ValueType::Float: ok = v.is_integer() || v.is_floating_point(); break;
        case ValueType::Boolean: ok = v.is_boolean(); break;
        case ValueType::String: ok = v.is_string(); break;
        case ValueType::Table: ok = v.is_table(); break;
        case ValueType::TableArray: ok = v.is_array() && (v.as_array()->empty() || v.as_array()->is_array_of_tables()); break;
        case ValueType::IntArray:
        case ValueType::FloatArray:
        case ValueType::StringArray:
          ok = v.is_array();
          if (ok) {
            for (const auto& e : *v.as_array()) {
              SSLAB_CHECK(element_ok(e, spec->type), where_of(e.source()), ": ", join_key(path_, key), " must be ",
                          type_name(spec->type), ", but an element is ", toml_type_name(e));
            }
          }
          break;
      }
      SSLAB_CHECK(ok, loc, " must be ", type_name(spec->type), ", got ", toml_type_name(v));
      if (v.is_integer() || v.is_floating_point()) check_number(loc, *spec, as_number(v));
      if (v.is_array()) {
        const toml::array& arr = *v.as_array();
        if (spec->length)
          SSLAB_CHECK(arr.size() == *spec->length, loc, " must have ", *spec->length, " elements, got ", arr.size());
        for (const auto& e : arr)
          if (e.is_integer() || e.is_floating_point()) check_number(loc, *spec, as_number(e));
      }
      if (v.is_string() && !spec->choices.empty()) {
        std::string s(*v.value<std::string>());
        bool found = std::find(spec->choices.begin(), spec->choices.end(), s) != spec->choices.end();
        if (!found) {
          std::string choices, near = nearest_match(s, spec->choices);
          for (const auto& c : spec->choices) choices += (choices.empty() ? "" : ", ") + c;
          throw UserError(str(loc, " must be one of ", choices, ", got '", s, "'",
                              near.empty() ? std::string() : "; did you mean '" + near + "'?"));
        }
      }
    }
  }
  for (const auto& spec : schema.keys()) {
    if (spec.optional || !std::holds_alternative<std::monostate>(spec.default_value)) continue;
    SSLAB_CHECK(t && t->contains(spec.name), where(), ": ", join_key(path_, spec.name), " is required (",
                spec.doc, ")");
  }
  return Config(*this, schema);
}

// ---------------------------------------------------------------- Config

const KeySpec& Config::spec(const std::string& key, ValueType type) const {
  const KeySpec* s = schema_.find(key);
  SSLAB_ASSERT(s, "key '", key, "' of ", node_.path(), " is read but not declared in its schema");
  bool compatible = s->type == type || (type == ValueType::Float && s->type == ValueType::Integer) ||
                    (type == ValueType::FloatArray && s->type == ValueType::IntArray);
  SSLAB_ASSERT(compatible, "key '", key, "' of ", node_.path(), " is declared as ", type_name(s->type),
               " but read as ", type_name(type));
  return *s;
}

template <typename T>
static T default_of(const KeySpec& spec, const std::string& path) {
  if (auto* v = std::get_if<T>(&spec.default_value)) return *v;
  if constexpr (std::is_same_v<T, double>) {
    if (auto* i = std::get_if<int64_t>(&spec.default_value)) return static_cast<double>(*i);
  }
  if constexpr (std::is_same_v<T, std::vector<double>>) {
    if (auto* i = std::get_if<std::vector<int64_t>>(&spec.default_value)) return std::vector<double>(i->begin(), i->end());
  }
  throw InternalError(str("key ", join_key(path, spec.name), " has no value and no usable default; check has() first"));
}

int64_t Config::get_int(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::Integer);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  return n ? *n->value<int64_t>() : default_of<int64_t>(s, node_.path());
}

double Config::get_float(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::Float);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  return n ? as_number(*n) : default_of<double>(s, node_.path());
}

bool Config::get_bool(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::Boolean);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  return n ? *n->value<bool>() : default_of<bool>(s, node_.path());
}

std::string Config::get_string(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::String);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  return n ? std::string(*n->value<std::string>()) : default_of<std::string>(s, node_.path());
}

std::vector<int64_t> Config::get_ints(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::IntArray);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  if (!n) return default_of<std::vector<int64_t>>(s, node_.path());
  std::vector<int64_t> out;
  for (const auto& e : *n->as_array()) out.push_back(*e.value<int64_t>());
  return out;
}

std::vector<double> Config::get_floats(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::FloatArray);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  if (!n) return default_of<std::vector<double>>(s, node_.path());
  std::vector<double> out;
  for (const auto& e : *n->as_array()) out.push_back(as_number(e));
  return out;
}

std::vector<std::string> Config::get_strings(const std::string& key) const {
  const KeySpec& s = spec(key, ValueType::StringArray);
  const toml::node* n = node_.doc().find(join_key(node_.path(), key));
  if (!n) return default_of<std::vector<std::string>>(s, node_.path());
  std::vector<std::string> out;
  for (const auto& e : *n->as_array()) out.emplace_back(*e.value<std::string>());
  return out;
}

static std::string resolve_path(const std::string& value, const std::string& base) {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  return (fs::path(base) / value).lexically_normal().string();
}

std::string Config::get_path(const std::string& key) const {
  return resolve_path(get_string(key), node_.has(key) ? node_.folder_of(key) : fs::current_path().string());
}

std::vector<std::string> Config::get_paths(const std::string& key) const {
  std::string base = node_.has(key) ? node_.folder_of(key) : fs::current_path().string();
  std::vector<std::string> out;
  for (const auto& v : get_strings(key)) out.push_back(resolve_path(v, base));
  return out;
}

// ---------------------------------------------------------------- Recipe

// A key may hold any character but a quote or a control character: '"'
// would break the dotted paths ("a.\"b.c\"" quotes a segment), and toml++
// writes a key holding '\'' or a tab unquoted, so to_toml() (the recipe a
// checkpoint carries) would not read back.
static void check_key(const std::string& key, const std::string& where) {
  for (unsigned char c : key)
    SSLAB_CHECK(c != '"' && c != '\'' && c >= 0x20 && c != 0x7f, where, ": the key '", key,
                "' holds a quote or a control character; recipe keys may not");
}

// check_key for every key of a table, its sub-tables and arrays of tables.
static void check_keys(const toml::node& node) {
  if (const toml::table* t = node.as_table()) {
    for (auto&& [k, v] : *t) {
      check_key(std::string(k.str()), where_of(k.source()));
      check_keys(v);
    }
  } else if (const toml::array* a = node.as_array()) {
    for (const toml::node& v : *a) check_keys(v);
  }
}

static toml::table parse_text(const std::string& text, const std::string& source) {
  toml::table t;
  try {
    t = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw UserError(str(where_of(e.source()), ": TOML syntax error: ", e.description()));
  }
  check_keys(t);
  return t;
}

static std::string read_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  SSLAB_CHECK(in, "cannot read recipe '", file, "': ", fs::exists(file) ? "permission denied" : "no such file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Moves every value of `src` into `dst`, merging tables recursively.
static void merge_into(toml::table& dst, toml::table&& src) {
  for (auto&& [k, v] : src) {
    toml::node* existing = dst.get(k.str());
    if (existing && existing->is_table() && v.is_table()) {
      merge_into(*existing->as_table(), std::move(*v.as_table()));
      continue;
    }
    toml::key key = k;
    v.visit([&](auto&& value) { dst.insert_or_assign(key, std::move(value)); });
  }
}

static toml::table load_with_bases(const std::string& file, std::vector<std::string>& chain) {
  std::string canon = fs::weakly_canonical(file).string();
  for (const auto& c : chain)
    SSLAB_CHECK(c != canon, file, ": recipe inheritance cycle through 'base' (", canon, ")");
  chain.push_back(canon);
  toml::table tbl = parse_text(read_file(file), file);
  const toml::node* base = tbl.get("base");
  if (!base) return tbl;
  std::string loc = where_of(base->source()) + ": base";
  SSLAB_CHECK(base->is_string(), loc, " must be a string, got another type");
  std::string rel(*base->value<std::string>());
  fs::path resolved = fs::path(rel).is_absolute() ? fs::path(rel) : fs::path(file).parent_path() / rel;
  SSLAB_CHECK(fs::exists(resolved), loc, ": base recipe '", rel, "' not found (looked for ",
              resolved.lexically_normal().string(), ")");
  toml::table merged = load_with_bases(resolved.lexically_normal().string(), chain);
  tbl.erase("base");
  merge_into(merged, std::move(tbl));
  return merged;
}

static void apply_override(toml::table& root, const std::string& text) {
  // A recipe is TOML, which is UTF-8: an override is held to the same rule
  // (toml++ would store other bytes in a key, and write them back as
  // different characters in the checkpoint's recipe).
  const int64_t bad = find_invalid_utf8(text.data(), text.size());
  SSLAB_CHECK(bad < 0, "--set ", text, ": not valid UTF-8 (byte ", bad, ")");
  auto eq = text.find('=');
  SSLAB_CHECK(eq != std::string::npos && eq > 0, "--set ", text, ": expected key.path=value");
  std::string key = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  std::string source = "--set " + text;
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value, source);
  } catch (const toml::parse_error&) {
    // Not a TOML value: take the text as a string (parsed as a quoted TOML
    // string so that the value, too, carries the override as its source).
    std::ostringstream quoted;
    quoted << toml::value<std::string>(value);
    parsed = toml::parse("v = " + quoted.str(), source);
  }
  check_keys(parsed);
  std::vector<std::string> segs = RecipeDoc::split(key);
  for (const auto& s : segs) {
    SSLAB_CHECK(!s.empty(), source, ": empty part in key '", key, "'");
    check_key(s, source);
  }
  // The resolved recipe (run folder, checkpoint) is read back by parse_string,
  // which refuses 'base': inheritance is resolved before overrides apply.
  SSLAB_CHECK(segs.front() != "base", source, ": 'base' cannot be overridden (set it in the recipe file)");
  toml::node* cur = &root;
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    if (auto* tbl = cur->as_table()) {
      toml::node* next = tbl->get(segs[i]);
      if (!next) next = &tbl->insert_or_assign(segs[i], toml::table{}).first->second;
      cur = next;
    } else if (auto* arr = cur->as_array()) {
      size_t idx = 0;
      SSLAB_CHECK(parse_index(segs[i], idx) && idx < arr->size(), source, ": '", segs[i],
                  "' is not an index of the array before it (size ", arr->size(), ")");
      cur = arr->get(idx);
    } else {
      SSLAB_CHECK(false, source, ": '", segs[i - 1], "' is not a table");
    }
  }
  toml::node& v = *parsed.get("v");
  if (auto* tbl = cur->as_table()) {
    v.visit([&](auto&& value) { tbl->insert_or_assign(segs.back(), std::move(value)); });
  } else if (auto* arr = cur->as_array()) {
    size_t idx = 0;
    SSLAB_CHECK(parse_index(segs.back(), idx) && idx < arr->size(), source, ": bad array index '", segs.back(), "'");
    v.visit([&](auto&& value) { arr->replace(arr->cbegin() + static_cast<ptrdiff_t>(idx), std::move(value)); });
  } else {
    SSLAB_CHECK(false, source, ": the parent of '", segs.back(), "' is not a table");
  }
  // Keep the override's origin on the new node for error messages.
  (void)source;
}

Recipe Recipe::load(const std::string& file, const std::vector<std::string>& overrides) {
  Recipe r;
  r.doc_ = std::make_shared<RecipeDoc>();
  r.file_ = file;
  std::vector<std::string> chain;
  r.doc_->root = load_with_bases(file, chain);
  r.doc_->file = file;
  for (const auto& o : overrides) apply_override(r.doc_->root, o);
  return r;
}

Recipe Recipe::parse_string(const std::string& text, const std::string& source_name,
                            const std::vector<std::string>& overrides) {
  Recipe r;
  r.doc_ = std::make_shared<RecipeDoc>();
  r.file_ = source_name;
  r.doc_->root = parse_text(text, source_name);
  r.doc_->file = source_name;
  SSLAB_CHECK(!r.doc_->root.contains("base"), source_name, ": 'base' needs a recipe file, not a string");
  for (const auto& o : overrides) apply_override(r.doc_->root, o);
  return r;
}

RecipeNode Recipe::at(const std::string& dotted) const { return RecipeNode(doc_, dotted); }

std::string Recipe::name() const {
  if (const toml::node* n = doc_->root.get("name"); n && n->is_string()) return std::string(*n->value<std::string>());
  return fs::path(file_).stem().string();
}

std::string Recipe::to_toml() const {
  std::ostringstream out;
  out << doc_->root << "\n";
  return out.str();
}

}  // namespace sslab
