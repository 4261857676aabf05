// Helpers for the audio tests: writing audio files with libsndfile, loading
// libsslab-audio.so through the real plugin host, building components from a
// TOML snippet.
#pragma once

#include "test_util.h"

#include <sndfile.h>

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sslab/components.h>
#include <sslab/plugin_host.h>
#include <sslab/recipe_schema.h>

namespace audio_test {

// Writes interleaved float frames with libsndfile in `format` (e.g.
// SF_FORMAT_WAV | SF_FORMAT_PCM_16).
inline void write_sound(const std::string& path, const std::vector<float>& interleaved, int channels, int rate,
                        int format) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << path << ": " << sf_strerror(nullptr);
  sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  EXPECT_EQ(sf_writef_float(f, interleaved.data(), frames), frames);
  sf_close(f);
}

// A sine of `hz` for `seconds` at `rate`, amplitude `amp`.
inline std::vector<float> sine(double hz, double seconds, int rate, double amp = 0.5) {
  std::vector<float> out(static_cast<size_t>(std::llround(seconds * rate)));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(amp * std::sin(2 * M_PI * hz * i / rate));
  return out;
}

// Frequency (Hz) of the strongest FFT bin of a mono wave.
inline double dominant_hz(const torch::Tensor& wave, int rate) {
  torch::Tensor mag = torch::abs(torch::fft_rfft(wave.to(torch::kFloat64)));
  return mag.argmax().item<double>() * rate / static_cast<double>(wave.size(0));
}

inline sslab::Registries& registries() {
  static bool loaded = [] {
    static sslab::PluginHost host(sslab::Registries::global());
    host.load_file(SSLAB_AUDIO_PLUGIN_FILE);
    return true;
  }();
  (void)loaded;
  return sslab::Registries::global();
}

// A recipe and a BuildContext over it; builds components by section.
class Env {
 public:
  explicit Env(const std::string& toml)
      : recipe_(sslab::Recipe::parse_string(toml, "audio_test.toml")), ctx_(recipe_, registries()) {}
  sslab::BuildContext& ctx() { return ctx_; }
  std::shared_ptr<sslab::Dataset> dataset(const std::string& split) {
    auto node = recipe_.at("data." + split);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Dataset, registries());
    auto ds = registries().datasets.at(node.required_string("type")).factory(cfg, ctx_);
    ctx_.datasets[split] = ds;
    return ds;
  }
  std::shared_ptr<sslab::Encoder> encoder(const std::string& name) {
    auto node = recipe_.at("encoders." + name);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Encoder, registries());
    auto enc = registries().encoders.at(node.required_string("type")).factory(cfg, ctx_);
    if (!cfg.get_string("input").empty()) enc->set_input(cfg.get_string("input"));
    ctx_.encoders[name] = enc;
    return enc;
  }
  std::shared_ptr<sslab::Transform> transform(const std::string& input, size_t i = 0) {
    auto node = recipe_.at("transforms").table_array(input).at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Transform, registries());
    return registries().transforms.at(node.required_string("type")).factory(cfg, ctx_);
  }
  std::shared_ptr<sslab::Objective> objective(size_t i = 0) {
    auto node = recipe_.root().table_array("objectives").at(i);
    auto cfg = sslab::component_config(node, sslab::ComponentKind::Objective, registries());
    return registries().objectives.at(node.required_string("type")).factory(cfg, ctx_);
  }

 private:
  sslab::Recipe recipe_;
  sslab::BuildContext ctx_;
};

}  // namespace audio_test
