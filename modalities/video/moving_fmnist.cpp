#include "moving_fmnist.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include <sslab/components.h>

namespace sslab::video {
namespace {

namespace fs = std::filesystem;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// An IDX file of unsigned bytes with `dims` dimensions (gzip or plain: zlib reads both).
torch::Tensor read_idx(const std::string& path, int dims) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f) throw DataError(path, "cannot open");
  unsigned char head[4];
  if (gzread(f.get(), head, 4) != 4) throw DataError(path, "too short for an IDX header");
  if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != dims)
    throw DataError(path, str("not an IDX file of unsigned bytes with ", dims, " dimensions"));
  std::vector<int64_t> shape;
  int64_t total = 1;
  for (int i = 0; i < dims; ++i) {
    unsigned char b[4];
    if (gzread(f.get(), b, 4) != 4) throw DataError(path, "truncated IDX header");
    shape.push_back((int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]});
    total *= shape.back();
  }
  torch::Tensor out = torch::empty(shape, torch::kUInt8);
  int64_t done = 0;
  while (done < total) {
    const int chunk = static_cast<int>(std::min<int64_t>(total - done, 1 << 24));
    int got = gzread(f.get(), out.data_ptr<uint8_t>() + done, static_cast<unsigned>(chunk));
    if (got <= 0) throw DataError(path, str("truncated: ", done, " of ", total, " bytes of data"));
    done += got;
  }
  return out;
}

std::string find_file(const std::string& root, const std::string& name) {
  for (const std::string& candidate : {root + "/" + name, root + "/" + name + ".gz"})
    if (fs::exists(candidate)) return candidate;
  throw DataError(
      root + "/" + name + "[.gz]",
      "missing (install the Debian package dataset-fashion-mnist, or set root to the folder of the IDX files)");
}

}  // namespace

ItemSource ItemSource::load(const std::string& root, const std::string& split) {
  SSLAB_CHECK(split == "train" || split == "test", "moving_fmnist: split must be train or test, got '", split, "'");
  const std::string prefix = split == "train" ? "train" : "t10k";
  ItemSource s;
  s.images = read_idx(find_file(root, prefix + "-images-idx3-ubyte"), 3);
  s.labels = read_idx(find_file(root, prefix + "-labels-idx1-ubyte"), 1).to(torch::kInt64);
  if (s.images.size(0) != s.labels.size(0))
    throw DataError(root, str(prefix, ": ", s.images.size(0), " images but ", s.labels.size(0), " labels"));
  return s;
}

MovingClip make_moving_clip(const ItemSource& source, uint64_t seed, int64_t index, const MovingOptions& o) {
  const int64_t n = source.images.size(0), item = source.images.size(1);
  SSLAB_CHECK(n > 0 && o.canvas > item, "moving_fmnist: the canvas (", o.canvas, ") must be larger than the items (",
              item, ")");
  std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(index), 0x6d6f76ull));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double range = static_cast<double>(o.canvas - item);
  torch::Tensor canvas = torch::zeros({o.frames, 1, o.canvas, o.canvas}, torch::kUInt8);
  auto acc = canvas.accessor<uint8_t, 4>();
  MovingClip clip;
  for (int64_t k = 0; k < o.items; ++k) {
    const int64_t src = static_cast<int64_t>(u(rng) * static_cast<double>(n)) % n;
    clip.sources.push_back(src);
    clip.classes.push_back(source.labels[src].item<int64_t>());
    torch::Tensor img = source.images[src].contiguous();
    const uint8_t* px = img.data_ptr<uint8_t>();
    double y = u(rng), x = u(rng);
    const double theta = u(rng) * 2 * M_PI;
    double vy = std::sin(theta), vx = std::cos(theta);
    for (int64_t t = 0; t < o.frames; ++t) {
      y += vy * o.step;
      x += vx * o.step;
      if (x <= 0) x = 0, vx = -vx;
      if (x >= 1) x = 1, vx = -vx;
      if (y <= 0) y = 0, vy = -vy;
      if (y >= 1) y = 1, vy = -vy;
      const int64_t top = static_cast<int64_t>(range * y), left = static_cast<int64_t>(range * x);
      for (int64_t r = 0; r < item; ++r)
        for (int64_t c = 0; c < item; ++c) {
          uint8_t& dst = acc[t][0][top + r][left + c];
          dst = std::max(dst, px[r * item + c]);
        }
    }
  }
  clip.frames = canvas;
  return clip;
}

}  // namespace sslab::video
