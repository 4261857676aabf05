// Helpers for the vision tests: load libsslab-vision.so through the real
// plugin host, build components from a TOML snippet through the registries,
// temporary folders, and catching an error's message.
#pragma once

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
#include <sslab/plugin_host.h>
#include <sslab/recipe_schema.h>

namespace vision_test {

namespace fs = std::filesystem;

#ifndef SSLAB_VISION_PLUGIN_FILE
#define SSLAB_VISION_PLUGIN_FILE SSLAB_PLUGIN_DIR "/libsslab-vision.so"
#endif

// Loads the vision plugin once into the process-wide registries.
inline sslab::Registries& registries() {
  static bool loaded = [] {
    static sslab::PluginHost host(sslab::Registries::global());
    host.load_file(SSLAB_VISION_PLUGIN_FILE);
    return true;
  }();
  (void)loaded;
  return sslab::Registries::global();
}

// A recipe and a BuildContext over it; builds its components by section.
class Env {
 public:
  explicit Env(const std::string& toml)
      : recipe_(sslab::Recipe::parse_string(toml, "vision_test.toml")), ctx_(recipe_, registries()) {}
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  sslab::BuildContext& ctx() { return ctx_; }

  // [data.<split>]
  std::shared_ptr<sslab::Dataset> dataset(const std::string& split) {
    auto node = recipe_.at("data." + split);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Dataset, registries());
    auto ds = registries().datasets.at(node.required_string("type")).factory(cfg, ctx_);
    ctx_.datasets[split] = ds;
    return ds;
  }
  // [encoders.<name>], kept in the context for objectives.
  std::shared_ptr<sslab::Encoder> encoder(const std::string& name) {
    auto node = recipe_.at("encoders." + name);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Encoder, registries());
    auto enc = registries().encoders.at(node.required_string("type")).factory(cfg, ctx_);
    ctx_.encoders[name] = enc;
    return enc;
  }
  // The i-th [[transforms.<input>]]
  std::shared_ptr<sslab::Transform> transform(const std::string& input, size_t i = 0) {
    auto node = recipe_.at("transforms").table_array(input).at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Transform, registries());
    return registries().transforms.at(node.required_string("type")).factory(cfg, ctx_);
  }
  // The i-th [[objectives]]
  std::shared_ptr<sslab::Objective> objective(size_t i = 0) {
    auto node = recipe_.root().table_array("objectives").at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Objective, registries());
    return registries().objectives.at(node.required_string("type")).factory(cfg, ctx_);
  }

 private:
  sslab::Recipe recipe_;
  sslab::BuildContext ctx_;
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
