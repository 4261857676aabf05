// The text reader (modalities/text/text_reader.cpp): the input is a corpus
// file, read in both formats, strict and skipping invalid entries. Checks
// what read_entries promises: entries are valid UTF-8, trimmed, not blank,
// start inside the file, and the counts add up.
#include <sslab/error.h>

#include "../modalities/text/text_reader.h"
#include "fuzz_util.h"

using namespace sslab::text;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

void read(const std::string& path, size_t size, TextFormat format, bool skip_invalid) {
  ReadStats stats;
  std::vector<TextEntry> entries;
  try {
    entries = read_entries(path, format, skip_invalid, &stats);
  } catch (const sslab::DataError&) {
    SSLAB_FUZZ_CHECK(!skip_invalid);  // skipping, only a missing file may fail
    return;
  }
  SSLAB_FUZZ_CHECK(static_cast<int64_t>(entries.size()) == stats.entries);
  SSLAB_FUZZ_CHECK(skip_invalid || stats.invalid == 0);
  int64_t last = -1;
  for (const TextEntry& e : entries) {
    SSLAB_FUZZ_CHECK(!e.text.empty() && !is_space(e.text.front()) && !is_space(e.text.back()));
    SSLAB_FUZZ_CHECK(find_invalid_utf8(e.text.data(), e.text.size()) < 0);
    SSLAB_FUZZ_CHECK(e.offset > last && e.offset < static_cast<int64_t>(size));
    last = e.offset;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int64_t bad = find_invalid_utf8(reinterpret_cast<const char*>(data), size);
  SSLAB_FUZZ_CHECK(bad >= -1 && bad < static_cast<int64_t>(size));
  const std::string path = sslab_fuzz::input_file(data, size, ".txt");
  for (TextFormat format : {TextFormat::Lines, TextFormat::Fortune})
    for (bool skip : {false, true}) read(path, size, format, skip);
  return 0;
}
