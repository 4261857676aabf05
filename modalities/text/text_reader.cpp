#include "text_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <sslab/error.h>

namespace sslab::text {

namespace fs = std::filesystem;

TextFormat parse_format(const std::string& name) {
  if (name == "lines") return TextFormat::Lines;
  if (name == "fortune") return TextFormat::Fortune;
  throw UserError(str("unknown text format '", name, "' (known: lines, fortune)"));
}

const char* format_name(TextFormat format) { return format == TextFormat::Lines ? "lines" : "fortune"; }

namespace {

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<TextEntry> read_entries(const std::string& path, TextFormat format, bool skip_invalid, ReadStats* stats) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path, "cannot open the file");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path, "read error");
  ReadStats local;
  ReadStats& st = stats ? *stats : local;
  std::vector<TextEntry> out;
  std::string current;
  int64_t current_start = -1;

  auto finish = [&]() {
    if (current_start < 0) return;
    if (blank(current)) {
      ++st.empty;
    } else {
      int64_t bad = find_invalid_utf8(current.data(), current.size());
      if (bad >= 0) {
        // current holds the entry's bytes from current_start on, with '\r'
        // before line ends removed: map the offset back to the file.
        int64_t file_offset = current_start;
        for (int64_t k = 0, pos = current_start; k <= bad && pos < static_cast<int64_t>(data.size()); ++pos) {
          if (data[pos] == '\r' && pos + 1 < static_cast<int64_t>(data.size()) && data[pos + 1] == '\n') continue;
          file_offset = pos;
          ++k;
        }
        if (!skip_invalid)
          throw DataError(path, str("invalid UTF-8 at byte offset ", file_offset, " (in the entry starting at byte ",
                                    current_start, ")"));
        ++st.invalid;
      } else {
        out.push_back({trim(current), current_start});
        ++st.entries;
      }
    }
    current.clear();
    current_start = -1;
  };

  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    size_t next = end == std::string::npos ? data.size() : end + 1;
    size_t line_end = end == std::string::npos ? data.size() : end;
    if (line_end > pos && data[line_end - 1] == '\r') --line_end;
    std::string line = data.substr(pos, line_end - pos);
    if (format == TextFormat::Lines) {
      current = line;
      current_start = static_cast<int64_t>(pos);
      finish();
    } else if (line == "%") {
      finish();
    } else {
      if (current_start < 0) {
        current_start = static_cast<int64_t>(pos);
      } else {
        current += '\n';
      }
      current += line;
    }
    pos = next;
  }
  finish();
  return out;
}

std::vector<std::string> expand_paths(const std::vector<std::string>& paths,
                                      const std::vector<std::string>& skip_suffixes) {
  std::vector<std::string> out;
  auto skipped = [&](const std::string& name) {
    for (const auto& s : skip_suffixes)
      if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
    return false;
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_symlink() || !e.is_regular_file()) continue;
        if (skipped(e.path().filename().string())) continue;
        files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
      out.insert(out.end(), files.begin(), files.end());
    } else if (fs::exists(p, ec)) {
      out.push_back(p);
    } else {
      throw UserError(str(p, ": no such file or folder"));
    }
  }
  return out;
}

// (file, label name) pairs from a manifest: "path<TAB>label" lines, '#'
// comments, paths relative to the manifest's folder.
std::vector<std::pair<std::string, std::string>> read_manifest(const std::string& manifest,
                                                               const std::vector<std::string>& skip_suffixes) {
  std::ifstream in(manifest);
  if (!in) throw UserError(str(manifest, ": cannot open the manifest"));
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  int lineno = 0;
  fs::path base = fs::path(manifest).parent_path();
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    SSLAB_CHECK(tab != std::string::npos && tab > 0 && tab + 1 < line.size(), manifest, ":", lineno,
                ": expected 'path<TAB>label', got '", line, "'");
    fs::path p = line.substr(0, tab);
    if (p.is_relative()) p = base / p;
    for (const auto& file : expand_paths({p.string()}, skip_suffixes)) out.emplace_back(file, line.substr(tab + 1));
  }
  SSLAB_CHECK(!out.empty(), manifest, ": the manifest lists no files");
  return out;
}

}  // namespace sslab::text
