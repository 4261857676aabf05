// Decoding throughput on a list of files: libsndfile's raw read (decode
// only, interleaved float frames) next to sslab's reader (decode + mono
// mixdown + libswresample to the target rate), measured back to back; with
// --cache DIR also sslab's reader through its resample cache (filled by a
// first pass that is not timed: the rate of every epoch after the first).
//   sslab-audio-bench FILE_LIST [--rate 16000] [--repeat 3] [--cache DIR]
// Prints one JSON line: audio seconds decoded per wall second for each.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "audio_io.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: sslab-audio-bench FILE_LIST [--rate HZ] [--repeat N] [--cache DIR]\n";
    return 2;
  }
  int64_t rate = 16000;
  int repeat = 3;
  std::string cache;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rate")
      rate = std::stoll(argv[i + 1]);
    else if (a == "--repeat")
      repeat = std::stoi(argv[i + 1]);
    else if (a == "--cache")
      cache = argv[i + 1];
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
    double audio_seconds = 0;
    for (const auto& f : files) {
      int64_t sr = 0;
      audio_seconds += static_cast<double>(sslab::audio::raw_read_frames(f, &sr)) / static_cast<double>(sr);
    }
    double raw_best = 1e30, full_best = 1e30, cached_best = 1e30;
    if (!cache.empty())
      for (const auto& f : files) sslab::audio::load_wave_cached(f, rate, cache);  // fills the cache
    for (int r = 0; r < repeat; ++r) {
      auto t0 = clock::now();
      int64_t frames = 0;
      for (const auto& f : files) frames += sslab::audio::raw_read_frames(f);
      auto t1 = clock::now();
      int64_t samples = 0;
      for (const auto& f : files) samples += sslab::audio::load_wave(f, rate).numel();
      auto t2 = clock::now();
      if (!cache.empty()) {
        for (const auto& f : files) samples += sslab::audio::load_wave_cached(f, rate, cache).numel();
        cached_best = std::min(cached_best, std::chrono::duration<double>(clock::now() - t2).count());
      }
      raw_best = std::min(raw_best, std::chrono::duration<double>(t1 - t0).count());
      full_best = std::min(full_best, std::chrono::duration<double>(t2 - t1).count());
      if (frames == 0 || samples == 0) return 1;
    }
    std::printf(
        "{\"files\": %zu, \"audio_seconds\": %.3f, \"raw_read_audio_s_per_s\": %.1f, "
        "\"sslab_read_audio_s_per_s\": %.1f, \"sslab_over_raw\": %.3f",
        files.size(), audio_seconds, audio_seconds / raw_best, audio_seconds / full_best, raw_best / full_best);
    if (!cache.empty())
      std::printf(", \"cached_read_audio_s_per_s\": %.1f, \"cached_over_raw\": %.3f", audio_seconds / cached_best,
                  raw_best / cached_best);
    std::printf("}\n");
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
