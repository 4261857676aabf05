// Helpers for the vision tests: load libsslab-vision.so through the real
// plugin host, build components from a TOML snippet through the registries,
// temporary folders, and catching an error's message.
#pragma once

#include "component_env.h"
#include "test_util.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sslab/components.h>
#include <sslab/host/plugin_host.h>
#include <sslab/host/recipe_schema.h>

namespace vision_test {

namespace fs = std::filesystem;

#ifndef SSLAB_VISION_PLUGIN_FILE
#define SSLAB_VISION_PLUGIN_FILE SSLAB_PLUGIN_DIR "/libsslab-vision.so"
#endif

inline sslab::Registries& registries() { return sslab_test::registries_with(SSLAB_VISION_PLUGIN_FILE); }

// A recipe and a BuildContext over it; builds its components by section.
class Env : public sslab_test::ComponentEnv {
 public:
  explicit Env(const std::string& toml) : ComponentEnv(toml, "vision_test.toml", SSLAB_VISION_PLUGIN_FILE) {}
};

// Temporary folders and error messages come from the shared test helpers.
using sslab_test::TempDir;
using sslab_test::user_error;

inline std::vector<unsigned char> read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& file, const unsigned char* data, size_t n) {
  fs::create_directories(fs::path(file).parent_path());
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// Seeds torch's default generator before every test.
class Seeded : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(0); }
};

}  // namespace vision_test
