// sslab-video-gen: writes Moving Fashion-MNIST as encoded video files
// (libavcodec in this process, one encoder per clip, no external ffmpeg)
// and a manifest for video.clips.
//
//   sslab-video-gen --out data/moving_fmnist [--train 10000] [--test 2000]
//                   [--frames 20] [--items 2] [--seed 0] [--codec libx264]
//                   [--crf 18] [--jobs 2] [--root /usr/share/datasets/fashion-mnist]
//
// Train clips take their items from the Fashion-MNIST training images, test
// clips from the test images (a fixed split: no item image is shared).
// Output: OUT/{train,test}/<index>.<ext> and OUT/manifest.tsv with columns
// path, split, frames, classes (the items' classes, comma-separated),
// sources (their Fashion-MNIST image indices). Deterministic: the same
// arguments give byte-identical files.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "moving_fmnist.h"
#include "video_io.h"

namespace {

namespace fs = std::filesystem;
using namespace sslab::video;

const char* kUsage =
    "usage: sslab-video-gen --out DIR [--train N] [--test N] [--frames T] [--items K] [--seed S]\n"
    "                       [--codec libx264|libvpx-vp9|mpeg4] [--crf Q] [--fps F] [--jobs J] [--root FMNIST_DIR]\n";

struct Split {
  std::string name;
  int64_t count;
  uint64_t seed;
};

std::string extension_for(const std::string& codec) {
  if (codec == "libvpx-vp9") return ".webm";
  if (codec == "mpeg4") return ".avi";
  return ".mp4";
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args{{"--train", "10000"}, {"--test", "2000"},
                                          {"--frames", "20"},   {"--items", "2"},
                                          {"--seed", "0"},      {"--codec", "libx264"},
                                          {"--crf", "18"},      {"--fps", "10"},
                                          {"--jobs", "2"},      {"--root", "/usr/share/datasets/fashion-mnist"}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= argc || (!args.count(a) && a != "--out")) {
      std::cerr << "sslab-video-gen: unknown or incomplete argument '" << a << "'\n" << kUsage;
      return 2;
    }
    args[a] = argv[++i];
  }
  if (!args.count("--out")) {
    std::cerr << "sslab-video-gen: --out is required\n" << kUsage;
    return 2;
  }
  try {
    const fs::path out = args["--out"];
    MovingOptions mo;
    mo.frames = std::stoll(args["--frames"]);
    mo.items = std::stoll(args["--items"]);
    WriteOptions wo;
    wo.codec = args["--codec"];
    wo.crf = std::stoll(args["--crf"]);
    wo.fps = std::stoll(args["--fps"]);
    const int jobs = std::max(1, std::stoi(args["--jobs"]));
    const uint64_t seed = std::stoull(args["--seed"]);
    const std::string ext = extension_for(wo.codec);
    std::vector<Split> splits{{"train", std::stoll(args["--train"]), seed},
                              {"test", std::stoll(args["--test"]), seed + 0x7e57}};
    std::ofstream manifest;
    fs::create_directories(out);
    const std::string manifest_tmp = (out / "manifest.tsv.tmp").string();
    manifest.open(manifest_tmp);
    manifest << "path\tsplit\tframes\tclasses\tsources\n";
    const auto t0 = std::chrono::steady_clock::now();
    int64_t written = 0;
    for (const Split& sp : splits) {
      if (sp.count <= 0) continue;
      ItemSource source = ItemSource::load(args["--root"], sp.name);
      fs::create_directories(out / sp.name);
      std::vector<std::string> rows(static_cast<size_t>(sp.count));
      std::atomic<int64_t> next{0};
      std::atomic<bool> failed{false};
      std::string error;
      std::mutex error_mutex;
      auto work = [&] {
        for (int64_t i = next++; i < sp.count && !failed; i = next++) {
          try {
            MovingClip clip = make_moving_clip(source, sp.seed, i, mo);
            char name[32];
            std::snprintf(name, sizeof(name), "%06lld", static_cast<long long>(i));
            const std::string rel = sp.name + "/" + name + ext;
            write_video((out / rel).string(), clip.frames, wo);
            rows[static_cast<size_t>(i)] = rel + "\t" + sp.name + "\t" + std::to_string(mo.frames) + "\t" +
                                           join(clip.classes) + "\t" + join(clip.sources);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!failed.exchange(true)) error = e.what();
          }
        }
      };
      std::vector<std::thread> threads;
      for (int j = 0; j < jobs; ++j) threads.emplace_back(work);
      for (auto& t : threads) t.join();
      if (failed) throw std::runtime_error(error);
      for (const auto& r : rows) manifest << r << "\n";
      written += sp.count;
    }
    manifest.close();
    fs::rename(manifest_tmp, out / "manifest.tsv");
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("sslab-video-gen: %lld clips (%s, %lld frames, %lld items) in %.1f s -> %s\n",
                static_cast<long long>(written), wo.codec.c_str(), static_cast<long long>(mo.frames),
                static_cast<long long>(mo.items), secs, (out / "manifest.tsv").c_str());
  } catch (const std::exception& e) {
    std::cerr << "sslab-video-gen: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
