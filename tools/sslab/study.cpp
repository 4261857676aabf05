#include "study.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "sslab/error.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"

namespace fs = std::filesystem;

namespace sslab::cli {

std::vector<std::string> split_grid_values(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(cur);
  return out;
}

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || std::string("._=,+-").find(c) != std::string::npos) ? c : '_';
  return out;
}

nlohmann::json spec_identity(const StudySpec& s) {
  nlohmann::json grid = nlohmann::json::array();
  for (const auto& [k, v] : s.grid) grid.push_back({{"key", k}, {"values", v}});
  return {{"recipe", s.recipe}, {"sets", s.sets}, {"grid", grid}};
}

}  // namespace

StudySpec make_study(const std::string& recipe_file, const std::vector<std::string>& sets,
                     const std::vector<std::string>& grids, int64_t seeds, const Recipe& base) {
  StudySpec spec;
  spec.recipe = fs::absolute(recipe_file).lexically_normal().string();
  spec.sets = sets;
  spec.seeds = seeds;
  std::set<std::string> keys;
  for (const auto& g : grids) {
    auto eq = g.find('=');
    SSLAB_CHECK(eq != std::string::npos && eq > 0, "--grid '", g, "': expected key=a,b,... (e.g. train.lr=1e-3,3e-3)");
    std::string key = trim(g.substr(0, eq));
    SSLAB_CHECK(key != "train.seed", "--grid train.seed: use --seeds N for seeds");
    SSLAB_CHECK(keys.insert(key).second, "--grid ", key, " is given twice");
    std::vector<std::string> values;
    for (const auto& v : split_grid_values(g.substr(eq + 1))) {
      std::string t = trim(v);
      SSLAB_CHECK(!t.empty(), "--grid '", g, "': an empty value");
      values.push_back(t);
    }
    SSLAB_CHECK(!values.empty(), "--grid '", g, "' has no values");
    spec.grid.emplace_back(key, values);
  }
  const int64_t seed0 = base.at("train").validate(train_schema(), {}).get_int("seed");
  // Short names in folder ids: the last part of each key, unless two keys share it.
  std::map<std::string, int> last_count;
  auto last = [](const std::string& k) { return k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1); };
  for (const auto& [k, v] : spec.grid) ++last_count[last(k)];
  size_t n = 1;
  for (const auto& [k, v] : spec.grid) n *= v.size();
  SSLAB_CHECK(n * static_cast<size_t>(seeds) <= 10000, "the study has ", n * static_cast<size_t>(seeds),
              " runs (", n, " points x ", seeds, " seeds); more than 10000 is surely a mistake");
  std::set<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    StudyPoint p;
    size_t rest = i;
    std::string id;
    // The last grid key varies fastest.
    std::vector<size_t> index(spec.grid.size());
    for (size_t g = spec.grid.size(); g-- > 0;) {
      index[g] = rest % spec.grid[g].second.size();
      rest /= spec.grid[g].second.size();
    }
    for (size_t g = 0; g < spec.grid.size(); ++g) {
      const auto& [k, values] = spec.grid[g];
      p.values.emplace_back(k, values[index[g]]);
      id += (id.empty() ? "" : ",") + (last_count[last(k)] > 1 ? k : last(k)) + "=" + values[index[g]];
    }
    id = sanitize(id);
    if (id.size() > 96) id = id.substr(0, 96);
    if (!ids.insert(id).second) {
      id += "-" + std::to_string(i);
      ids.insert(id);
    }
    p.id = id;
    for (int64_t s = 0; s < seeds; ++s) {
      StudyRun r;
      r.seed = seed0 + s;
      r.dir = id + "/seed-" + std::to_string(s);
      r.sets = sets;
      for (const auto& [k, v] : p.values) r.sets.push_back(k + "=" + v);
      r.sets.push_back("train.seed=" + std::to_string(r.seed));
      p.runs.push_back(std::move(r));
    }
    spec.points.push_back(std::move(p));
  }
  return spec;
}

void save_study(const StudySpec& spec, const std::string& dir) {
  const std::string file = (fs::path(dir) / "study.json").string();
  StudySpec old;
  if (load_study(dir, old)) {
    nlohmann::json a = spec_identity(old), b = spec_identity(spec);
    SSLAB_CHECK(a == b, dir, " holds another study (", a.dump(), "); this one is ", b.dump(),
                ": choose another --out");
  }
  nlohmann::ordered_json j;
  j["format"] = "sslab-study";
  j["recipe"] = spec.recipe;
  j["sets"] = spec.sets;
  nlohmann::ordered_json grid = nlohmann::ordered_json::array();
  for (const auto& [k, v] : spec.grid) grid.push_back({{"key", k}, {"values", v}});
  j["grid"] = grid;
  j["seeds"] = spec.seeds;
  nlohmann::ordered_json points = nlohmann::ordered_json::array();
  for (const auto& p : spec.points) {
    nlohmann::ordered_json pj;
    pj["id"] = p.id;
    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    for (const auto& [k, v] : p.values) values[k] = v;
    pj["values"] = values;
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    for (const auto& r : p.runs) runs.push_back({{"seed", r.seed}, {"dir", r.dir}, {"sets", r.sets}});
    pj["runs"] = runs;
    points.push_back(pj);
  }
  j["points"] = points;
  write_file_atomic(file, j.dump(2) + "\n");
}

bool load_study(const std::string& dir, StudySpec& spec) {
  const fs::path file = fs::path(dir) / "study.json";
  if (!fs::exists(file)) return false;
  std::ifstream in(file);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  SSLAB_CHECK(!j.is_discarded() && j.is_object() && j.value("format", "") == "sslab-study", file.string(),
              ": not an sslab study file");
  try {
    spec.recipe = j.at("recipe").get<std::string>();
    spec.sets = j.at("sets").get<std::vector<std::string>>();
    spec.seeds = j.at("seeds").get<int64_t>();
    spec.grid.clear();
    for (const auto& g : j.at("grid")) spec.grid.emplace_back(g.at("key").get<std::string>(), g.at("values").get<std::vector<std::string>>());
    spec.points.clear();
    for (const auto& pj : j.at("points")) {
      StudyPoint p;
      p.id = pj.at("id").get<std::string>();
      for (const auto& [k, v] : pj.at("values").items()) p.values.emplace_back(k, v.get<std::string>());
      for (const auto& rj : pj.at("runs"))
        p.runs.push_back({rj.at("seed").get<int64_t>(), rj.at("dir").get<std::string>(), rj.at("sets").get<std::vector<std::string>>()});
      spec.points.push_back(std::move(p));
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError(str(file.string(), ": not a readable sslab study file (", e.what(), ")"));
  }
  return true;
}

namespace {
void flatten(const toml::node& node, const std::string& path, std::map<std::string, std::string>& out) {
  if (const toml::table* t = node.as_table()) {
    for (auto&& [k, v] : *t) flatten(v, path.empty() ? std::string(k.str()) : path + "." + std::string(k.str()), out);
  } else if (const toml::array* a = node.as_array(); a && a->is_array_of_tables()) {
    for (size_t i = 0; i < a->size(); ++i) flatten((*a)[i], path + "." + std::to_string(i), out);
  } else if (const auto* f = node.as_floating_point()) {
    // The shortest text that reads back to the same double (0.003, not 0.0030000000000000001).
    const double v = f->get();
    char buf[40];
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    out[path] = buf;
  } else {
    std::ostringstream s;
    node.visit([&](auto&& n) { s << n; });
    out[path] = s.str();
  }
}
}  // namespace

std::map<std::string, std::string> flatten_recipe(const std::string& toml_text, const std::string& name) {
  std::map<std::string, std::string> out;
  try {
    toml::table t = toml::parse(toml_text, name);
    flatten(t, "", out);
  } catch (const toml::parse_error& e) {
    throw UserError(str(name, ": not a readable recipe (", e.description(), ")"));
  }
  return out;
}

}  // namespace sslab::cli
