// Runs the FFmpeg reader and writer through their success and failure paths
// (good files of three codecs, seeks, resizing, a zero-byte file, a text
// file, a truncated file, an unknown encoder). It is linked with
// LeakSanitizer (-fsanitize=leak): any FFmpeg object not freed on some path
// makes the process exit non-zero at the end. --leak-one-frame leaks an
// AVFrame on purpose (the check of the check).
//   video_leak_check DIR [--leak-one-frame]
#include <filesystem>
#include <fstream>
#include <iostream>

#include "video_io.h"

extern "C" {
#include <libavutil/frame.h>
}

using namespace sslab::video;

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: video_leak_check DIR [--leak-one-frame]\n";
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  torch::Tensor clip = torch::zeros({12, 1, 32, 32}, torch::kUInt8);
  for (int64_t t = 0; t < 12; ++t) clip[t].narrow(2, 0, 16).fill_(static_cast<uint8_t>(10 * t));
  int failures = 0, errors = 0;
  for (const auto& [codec, ext] : std::vector<std::pair<std::string, std::string>>{
           {"libx264", ".mp4"}, {"libvpx-vp9", ".webm"}, {"mpeg4", ".avi"}}) {
    WriteOptions wo;
    wo.codec = codec;
    wo.gop = 4;
    const std::string path = dir + "/clip" + ext;
    write_video(path, clip, wo);
    ReadOptions ro;
    ro.width = 16;
    ro.height = 16;
    ro.pixel_format = "rgb";
    ro.threads = 2;
    VideoReader r(path, ro);
    if (r.read_clip(8, 2, 2).size(0) != 2) ++failures;
    if (r.read_clip(0, 3, 1).size(0) != 3) ++failures;
    try {
      r.read_clip(10, 5, 1);  // past the end
      ++failures;
    } catch (const sslab::DataError&) {
      ++errors;
    }
  }
  // Bad files: each must throw DataError and free what it opened.
  std::ofstream(dir + "/empty.mp4").close();
  std::ofstream(dir + "/text.mp4") << "not a video\n";
  {
    std::ifstream in(dir + "/clip.mp4", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/cut.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::ifstream in2(dir + "/clip.avi", std::ios::binary);
    std::string avi((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/cut.avi", std::ios::binary) << avi.substr(0, avi.size() / 2);
  }
  for (const char* name : {"empty.mp4", "text.mp4", "cut.mp4", "cut.avi"}) {
    try {
      VideoReader r(dir + "/" + name, ReadOptions{});
      r.read_clip(0, 12, 1);
      ++failures;
    } catch (const sslab::DataError&) {
      ++errors;
    }
  }
  try {
    WriteOptions wo;
    wo.codec = "no-such-encoder";
    write_video(dir + "/bad.mp4", clip, wo);
    ++failures;
  } catch (const sslab::DataError&) {
    ++errors;
  }
  try {  // a writer abandoned after a frame: the destructor finishes and frees
    VideoWriter w(dir + "/abandoned.mp4", WriteOptions{});
    w.write(clip[0]);
    throw sslab::DataError(dir, "abandoned");
  } catch (const sslab::DataError&) {
    ++errors;
  }
  if (argc == 3 && std::string(argv[2]) == "--leak-one-frame") {
    static AVFrame* leaked = nullptr;
    leaked = av_frame_alloc();
    leaked = nullptr;  // unreachable from here on: a leak
  }
  std::cout << "video_leak_check: " << errors << " expected errors, " << failures << " failures\n";
  return failures == 0 && errors == 9 ? 0 : 1;
}
