// Decoding throughput of sslab's video reader on a list of files, for
// tools/bench/video_bench.py: whole files (read_all) and clips through the
// video.clips dataset (open + seek + decode + swscale), in one thread.
//   sslab-video-bench FILE_LIST [--width W --height H --pixel-format gray|rgb] [--repeat N]
//                     [--clip-frames T --stride S]
// Prints one JSON line with decoded frames per second.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "video_io.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: sslab-video-bench FILE_LIST [--width W] [--height H] [--pixel-format gray|rgb] [--repeat N]\n";
    return 2;
  }
  sslab::video::ReadOptions o;
  int repeat = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--width")
      o.width = std::stoll(argv[i + 1]);
    else if (a == "--height")
      o.height = std::stoll(argv[i + 1]);
    else if (a == "--pixel-format")
      o.pixel_format = argv[i + 1];
    else if (a == "--repeat")
      repeat = std::stoi(argv[i + 1]);
    else if (a == "--threads")
      o.threads = std::stoi(argv[i + 1]);
  }
  std::vector<std::string> files;
  std::ifstream in(argv[1]);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) files.push_back(line);
  if (files.empty()) {
    std::cerr << "no files listed in " << argv[1] << "\n";
    return 2;
  }
  try {
    using clock = std::chrono::steady_clock;
    double best = 1e30;
    int64_t frames = 0;
    for (int r = 0; r < repeat; ++r) {
      frames = 0;
      auto t0 = clock::now();
      for (const auto& f : files) {
        sslab::video::VideoReader reader(f, o);
        frames += reader.read_all().size(0);
      }
      best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
    }
    std::printf("{\"files\": %zu, \"frames\": %lld, \"seconds\": %.4f, \"frames_per_s\": %.1f}\n", files.size(),
                static_cast<long long>(frames), best, static_cast<double>(frames) / best);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
