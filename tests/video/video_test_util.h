// Helpers for the video tests: synthetic clips with a known pattern, written
// with libavcodec, and the plugin loaded through the real plugin host.
#pragma once

#include "component_env.h"
#include "test_util.h"

#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "video_io.h"

namespace video_test {

// Gray frame t (< 59) of the test pattern: the left half at 16 + 4 t, the
// right half at 255 minus that (flat areas survive lossy coding within a
// grey level or so), so every frame index is readable from its pixels.
inline torch::Tensor pattern_frame(int64_t t, int64_t h, int64_t w) {
  torch::Tensor f = torch::empty({1, h, w}, torch::kUInt8);
  f.narrow(2, 0, w / 2).fill_(static_cast<uint8_t>(16 + 4 * t));
  f.narrow(2, w / 2, w - w / 2).fill_(static_cast<uint8_t>(255 - 16 - 4 * t));
  return f;
}

inline torch::Tensor pattern_clip(int64_t frames, int64_t h, int64_t w) {
  std::vector<torch::Tensor> v;
  for (int64_t t = 0; t < frames; ++t) v.push_back(pattern_frame(t, h, w));
  return torch::stack(v);
}

// Frame index that a decoded gray frame [1,H,W] shows (from its left half).
inline int64_t pattern_index(const torch::Tensor& frame) {
  const int64_t w = frame.size(2);
  // Centre of the left half, away from the edge blur.
  double v = frame.narrow(2, w / 8, w / 4)
                 .narrow(1, frame.size(1) / 4, frame.size(1) / 2)
                 .to(torch::kFloat64)
                 .mean()
                 .item<double>();
  return std::llround((v - 16) / 4);
}

inline std::string write_pattern(const std::string& path, const std::string& codec, int64_t frames, int64_t h = 48,
                                 int64_t w = 64, int64_t gop = 10) {
  sslab::video::WriteOptions o;
  o.codec = codec;
  o.gop = gop;
  sslab::video::write_video(path, pattern_clip(frames, h, w), o);
  return path;
}

inline sslab::Registries& registries() { return sslab_test::registries_with(SSLAB_VIDEO_PLUGIN_FILE); }

class Env : public sslab_test::ComponentEnv {
 public:
  explicit Env(const std::string& toml) : ComponentEnv(toml, "video_test.toml", SSLAB_VIDEO_PLUGIN_FILE) {}
};

}  // namespace video_test
