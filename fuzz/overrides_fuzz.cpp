// --set overrides: each line of the input is one "dotted.key=value"
// override, applied in order to a fixed recipe with tables, arrays and an
// array of tables.
#include "recipe_check.h"

#include <vector>

namespace {
const char* const kBase = R"(name = "fuzz"
[plugins]
load = ["template", "ssl"]
[data.train]
type = "template.blobs"
size = 1024
noise = 1.0
[[transforms."vector@*"]]
type = "template.noise"
std = 0.5
[heads.proj]
hidden = [64, 32]
[[objectives]]
type = "ssl.infonce"
temperature = 0.2
[train]
steps = 60
)";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> overrides;
  std::string line;
  for (size_t i = 0; i < size && overrides.size() < 16; ++i) {
    if (data[i] == '\n') {
      overrides.push_back(line);
      line.clear();
    } else {
      line += static_cast<char>(data[i]);
    }
  }
  if (!line.empty() && overrides.size() < 16) overrides.push_back(line);
  SSLAB_FUZZ_REJECTS_CLEANLY(sslab_fuzz::check_recipe(sslab::Recipe::parse_string(kBase, "base.toml", overrides)));
  return 0;
}
