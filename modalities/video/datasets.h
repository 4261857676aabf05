// Video datasets. Samples hold "video.frames" float32 [T,C,H,W] in [0,1],
// "label.items" float32 [classes] (multi-hot: the classes of the clip's
// items) and, when every clip has exactly one item, "label" int64 [].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <sslab/components.h>

#include "moving_fmnist.h"
#include "video_io.h"

namespace sslab::video {

struct ClipsOptions {
  std::string manifest;         // TSV: path, optional split, optional classes ("3,7")
  std::string split = "train";  // train, test or all
  int64_t frames = 20;          // T
  int64_t stride = 1;           // between sampled frames
  std::string start = "first";  // first, center or random (seeded per (seed, index))
  int64_t clips_per_video = 1;  // samples per file (different random starts)
  uint64_t seed = 0;
  int64_t classes = 0;  // multi-hot width; 0: 1 + the largest class in the manifest
  ReadOptions read;
};

// Encoded video files listed in a manifest, decoded with FFmpeg. Each
// worker thread keeps its last few files open (demuxer, decoder, scaler),
// so clips drawn again from a file seek in it instead of reopening it.
class ClipsDataset : public Dataset {
 public:
  explicit ClipsDataset(ClipsOptions options);
  int64_t size() const override { return static_cast<int64_t>(rows_.size()) * options_.clips_per_video; }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return single_item_ ? classes_ : 0; }
  int64_t item_classes() const { return classes_; }
  const std::string& path(int64_t index) const {
    return rows_.at(static_cast<size_t>(index / options_.clips_per_video)).path;
  }

 private:
  struct Row {
    std::string path;
    int64_t frames = 0;  // from the manifest, 0: ask the file
    std::vector<int64_t> classes;
  };
  ClipsOptions options_;
  std::vector<Row> rows_;
  int64_t classes_ = 0;
  bool single_item_ = false;
};

// Moving Fashion-MNIST made in memory (no files): for smoke runs and tests.
struct MovingDatasetOptions {
  std::string root = "/usr/share/datasets/fashion-mnist";
  std::string split = "train";  // source images: train or test
  int64_t size = 1000;
  uint64_t seed = 0;
  MovingOptions clip;
};

class MovingFashionMnist : public Dataset {
 public:
  explicit MovingFashionMnist(MovingDatasetOptions options);
  int64_t size() const override { return options_.size; }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return options_.clip.items == 1 ? 10 : 0; }

 private:
  MovingDatasetOptions options_;
  ItemSource source_;
};

// The sample of a clip uint8 [T,C,H,W] with its item classes.
Sample clip_sample(const torch::Tensor& frames, const std::vector<int64_t>& classes, int64_t num_classes,
                   bool single_item);

}  // namespace sslab::video
