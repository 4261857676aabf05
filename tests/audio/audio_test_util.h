// Helpers for the audio tests: writing audio files with libsndfile, loading
// libsslab-audio.so through the real plugin host, building components from a
// TOML snippet.
#pragma once

#include "component_env.h"
#include "test_util.h"

#include <sndfile.h>

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sslab/components.h>
#include <sslab/host/plugin_host.h>
#include <sslab/host/recipe_schema.h>

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

inline sslab::Registries& registries() { return sslab_test::registries_with(SSLAB_AUDIO_PLUGIN_FILE); }

// A recipe and a BuildContext over it; builds components by section.
class Env : public sslab_test::ComponentEnv {
 public:
  explicit Env(const std::string& toml) : ComponentEnv(toml, "audio_test.toml", SSLAB_AUDIO_PLUGIN_FILE) {}
};

}  // namespace audio_test
