#include "datasets.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <list>
#include <random>
#include <sstream>

#include <sslab/components.h>

namespace sslab::video {
namespace {

std::vector<std::string> split_on(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, sep)) out.push_back(cell);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

// The calling thread's open readers, most recently used first.
class ReaderCache {
 public:
  static constexpr size_t kCapacity = 4;

  VideoReader& get(const std::string& path, const ReadOptions& o) {
    const std::string key = str(path, '\n', o.width, 'x', o.height, o.pixel_format, o.threads);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.splice(entries_.begin(), entries_, it);
        return *entries_.front().second;
      }
    }
    auto reader = std::make_unique<VideoReader>(path, o);
    entries_.emplace_front(key, std::move(reader));
    if (entries_.size() > kCapacity) entries_.pop_back();
    return *entries_.front().second;
  }
  // Drops a reader whose file failed (its state is unknown).
  void drop(const std::string& path) {
    entries_.remove_if([&](const auto& e) { return e.second->path() == path; });
  }

 private:
  std::list<std::pair<std::string, std::unique_ptr<VideoReader>>> entries_;
};

ReaderCache& reader_cache() {
  thread_local ReaderCache cache;
  return cache;
}

}  // namespace

Sample clip_sample(const torch::Tensor& frames, const std::vector<int64_t>& classes, int64_t num_classes,
                   bool single_item) {
  Sample s;
  s["video.frames"] = frames.to(torch::kFloat32).div_(255.0f);
  torch::Tensor items = torch::zeros({num_classes}, torch::kFloat32);
  for (int64_t c : classes)
    if (c >= 0 && c < num_classes) items[c] = 1.0f;
  s["label.items"] = items;
  if (single_item && classes.size() == 1) s["label"] = torch::tensor(classes[0], torch::kInt64);
  return s;
}

ClipsDataset::ClipsDataset(ClipsOptions options) : options_(std::move(options)) {
  const std::string& file = options_.manifest;
  SSLAB_CHECK(options_.frames > 0 && options_.stride > 0 && options_.clips_per_video > 0,
              "video.clips: frames, stride and clips_per_video must be > 0");
  std::ifstream in(file);
  SSLAB_CHECK(in, file, ": cannot open the manifest");
  std::string line;
  SSLAB_CHECK(std::getline(in, line), file, ": empty manifest (expected a header: path<TAB>split<TAB>classes...)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto header = split_on(line, '\t');
  SSLAB_CHECK(!header.empty() && header[0] == "path", file, ":1: the header must start with the column 'path'");
  int split_col = -1, classes_col = -1, frames_col = -1;
  for (size_t i = 1; i < header.size(); ++i) {
    if (header[i] == "split") split_col = static_cast<int>(i);
    if (header[i] == "classes") classes_col = static_cast<int>(i);
    if (header[i] == "frames") frames_col = static_cast<int>(i);
  }
  const auto folder = std::filesystem::path(file).parent_path();
  int64_t line_no = 1, max_class = -1;
  bool all_single = classes_col >= 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto cells = split_on(line, '\t');
    SSLAB_CHECK(cells.size() == header.size(), file, ":", line_no, ": expected ", header.size(),
                " tab-separated cells, got ", cells.size());
    if (split_col >= 0) {
      const std::string& sp = cells[static_cast<size_t>(split_col)];
      SSLAB_CHECK(sp == "train" || sp == "test", file, ":", line_no, ": split must be train or test, got '", sp, "'");
      if (options_.split != "all" && sp != options_.split) continue;
    }
    Row row;
    std::filesystem::path p(cells[0]);
    row.path = p.is_relative() ? (folder / p).string() : p.string();
    try {
      if (frames_col >= 0) row.frames = std::stoll(cells[static_cast<size_t>(frames_col)]);
      if (classes_col >= 0)
        for (const auto& c : split_on(cells[static_cast<size_t>(classes_col)], ','))
          if (!c.empty()) row.classes.push_back(std::stoll(c));
    } catch (const std::exception&) {
      throw UserError(str(file, ":", line_no, ": frames must be an integer and classes comma-separated integers"));
    }
    for (int64_t c : row.classes) {
      SSLAB_CHECK(c >= 0, file, ":", line_no, ": negative class ", c);
      max_class = std::max(max_class, c);
    }
    all_single = all_single && row.classes.size() == 1;
    rows_.push_back(std::move(row));
  }
  SSLAB_CHECK(!rows_.empty(), file, ": the ", options_.split, " split lists no files");
  classes_ = options_.classes > 0 ? options_.classes : max_class + 1;
  SSLAB_CHECK(max_class < classes_, file, ": class ", max_class, " does not fit classes = ", classes_);
  single_item_ = all_single && classes_ > 0;
}

Sample ClipsDataset::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "video.clips: index ", index, " out of range [0, ", size(), ")");
  const Row& row = rows_[static_cast<size_t>(index / options_.clips_per_video)];
  const int64_t span = (options_.frames - 1) * options_.stride + 1;
  ReaderCache& cache = reader_cache();
  try {
    VideoReader& reader = cache.get(row.path, options_.read);
    const int64_t available = row.frames > 0 ? row.frames : reader.frame_count();
    if (available < span)
      throw DataError(row.path, str("has ", available, " frames; a clip of ", options_.frames, " at stride ",
                                    options_.stride, " needs ", span));
    int64_t start = 0;
    if (options_.start == "center") {
      start = (available - span) / 2;
    } else if (options_.start == "random") {
      std::mt19937_64 rng(mix_seed(options_.seed, static_cast<uint64_t>(index), 0x636c6970ull));
      start = static_cast<int64_t>(rng() % static_cast<uint64_t>(available - span + 1));
    }
    return clip_sample(reader.read_clip(start, options_.frames, options_.stride), row.classes, classes_, single_item_);
  } catch (const DataError&) {
    cache.drop(row.path);
    throw;
  }
}

MovingFashionMnist::MovingFashionMnist(MovingDatasetOptions options)
    : options_(std::move(options)), source_(ItemSource::load(options_.root, options_.split)) {}

Sample MovingFashionMnist::get(int64_t index) const {
  SSLAB_CHECK(index >= 0 && index < size(), "video.moving_fmnist: index ", index, " out of range [0, ", size(), ")");
  MovingClip clip = make_moving_clip(source_, options_.seed, index, options_.clip);
  return clip_sample(clip.frames, clip.classes, 10, options_.clip.items == 1);
}

}  // namespace sslab::video
