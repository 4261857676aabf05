// The recipe parser: the input is a recipe's TOML text.
#include "recipe_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  SSLAB_FUZZ_REJECTS_CLEANLY(sslab_fuzz::check_recipe(sslab::Recipe::parse_string(text, "fuzz.toml")));
  return 0;
}
