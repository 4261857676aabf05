// Moving Fashion-MNIST, made the way Moving MNIST is (Srivastava et al.
// 2015; OpenSTL's loader): 28x28 items bouncing in a 64x64 canvas, each from
// a random start in a random direction at 0.1 x (64 - 28) = 3.6 px/frame,
// reflected at the edges; overlapping items combine by pixel-wise max.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::video {

// Fashion-MNIST images uint8 [N,28,28] and labels int64 [N] of one split
// ("train" or "test") from `root` ({train,t10k}-{images-idx3,labels-idx1}-ubyte,
// plain or .gz). DataError naming the file when one is missing or malformed.
struct ItemSource {
  torch::Tensor images;
  torch::Tensor labels;
  static ItemSource load(const std::string& root, const std::string& split);
};

struct MovingOptions {
  int64_t frames = 20;
  int64_t canvas = 64;
  int64_t items = 2;
  double step = 0.1;  // per frame, in units of (canvas - item size)
};

struct MovingClip {
  torch::Tensor frames;          // uint8 [T,1,canvas,canvas]
  std::vector<int64_t> classes;  // one per item
  std::vector<int64_t> sources;  // source image index of each item
};

// Clip `index` of the sequence seeded by `seed`: a pure function of its
// arguments (same arguments, same pixels).
MovingClip make_moving_clip(const ItemSource& source, uint64_t seed, int64_t index, const MovingOptions& options);

}  // namespace sslab::video
