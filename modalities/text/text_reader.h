// Reading text corpora: one-entry-per-line files and %-separated entry files
// (the fortune format), with strict UTF-8 validation. Free of torch so the
// tokenizer trainer, the datasets and the tools share it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sslab/utf8.h>

namespace sslab::text {

enum class TextFormat { Lines, Fortune };

// "lines" or "fortune"; anything else is a UserError.
TextFormat parse_format(const std::string& name);
// The name parse_format reads: "lines" or "fortune".
const char* format_name(TextFormat format);

// The SDK's UTF-8 check (sslab/utf8.h), under the name the text code uses.
using sslab::find_invalid_utf8;

struct TextEntry {
  std::string text;    // the entry, lines joined with '\n', trimmed
  int64_t offset = 0;  // byte offset of its first line in the file
};

struct ReadStats {
  int64_t entries = 0;  // entries kept
  int64_t empty = 0;    // entries that were empty or blank (skipped)
  int64_t invalid = 0;  // entries with invalid UTF-8 (skipped under skip_invalid)
};

// The entries of one file. Lines: each line is an entry. Fortune: entries
// are separated by lines holding only '%'. '\r' before a line end is dropped;
// blank entries are skipped and counted. An entry that is not valid UTF-8
// throws DataError(path, "invalid UTF-8 at byte offset N") unless
// skip_invalid, which skips and counts it. A missing file is a DataError.
std::vector<TextEntry> read_entries(const std::string& path, TextFormat format, bool skip_invalid,
                                    ReadStats* stats = nullptr);

// Files named by `paths`: a file stands for itself; a folder for its regular
// files (not symbolic links, not sub-folders), sorted by name, except those
// whose name ends with one of `skip_suffixes` (e.g. ".dat" index files).
// A path that does not exist is a UserError naming it.
std::vector<std::string> expand_paths(const std::vector<std::string>& paths,
                                      const std::vector<std::string>& skip_suffixes);

// (file, label) pairs of a manifest: "path<TAB>label" lines, '#' comments,
// paths relative to the manifest's folder; a folder stands for its files
// (expand_paths). A malformed line is a UserError naming manifest:line.
std::vector<std::pair<std::string, std::string>> read_manifest(const std::string& manifest,
                                                               const std::vector<std::string>& skip_suffixes);

}  // namespace sslab::text
