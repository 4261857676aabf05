#include "sslab/host/run_folder.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sslab/error.h"

namespace fs = std::filesystem;

namespace sslab {

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  SSLAB_CHECK(in, "cannot read '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  errno = 0;
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (out) {
    out << text;
    out.close();
  }
  std::error_code ec;
  if (out.good()) {
    fs::rename(tmp, path, ec);
    if (!ec) return;
  }
  int err = errno;
  std::string why = ec ? ec.message() : err != 0 ? std::strerror(err) : "write failed";
  fs::remove(tmp, ec);
  throw UserError(str(path, ": cannot write (", why, ")"));
}

std::string default_run_dir(const Recipe& recipe) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return (fs::path("runs") / (recipe.name() + "-" + stamp)).string();
}

void create_run_folder(const std::string& run_dir, const Recipe& recipe) {
  fs::path dir(run_dir);
  fs::create_directories(dir / "checkpoints");
  write_file_atomic((dir / "recipe.toml").string(), recipe.to_toml());
  write_file_atomic((dir / "source").string(), fs::absolute(recipe.file()).lexically_normal().string() + "\n");
  write_file_atomic((dir / "metrics.jsonl").string(), "");
}

Recipe load_run_recipe(const std::string& run_dir) {
  fs::path dir(run_dir);
  SSLAB_CHECK(fs::is_directory(dir), "run folder '", run_dir, "' does not exist");
  SSLAB_CHECK(fs::exists(dir / "recipe.toml"), run_dir, ": not a run folder (no recipe.toml)");
  // Relative paths in the recipe resolve against the folder of the original
  // recipe file, recorded in `source`.
  std::string source = fs::exists(dir / "source") ? read_text(dir / "source") : (dir / "recipe.toml").string();
  while (!source.empty() && (source.back() == '\n' || source.back() == '\r')) source.pop_back();
  return Recipe::parse_string(read_text(dir / "recipe.toml"), source);
}

void truncate_metrics(const std::string& file, int64_t step) {
  std::istringstream lines(fs::exists(file) ? read_text(file) : std::string());
  std::string line, kept;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    auto it = j.find("step");
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  write_file_atomic(file, kept);
}

}  // namespace sslab
