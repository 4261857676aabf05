// Video files through FFmpeg: a reader (libavformat demuxing, libavcodec
// decoding, libswscale resizing and pixel-format conversion) that samples
// clips of T frames at a stride, seeking instead of decoding from the start,
// and a writer (libavcodec encoding, libavformat muxing) used by the dataset
// generator and the tests' fixtures.
//
// Every FFmpeg object is owned by a unique_ptr with its FFmpeg free function,
// so every path (errors included) releases it. A file FFmpeg cannot open,
// demux or decode throws sslab::DataError naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <sslab/components.h>

namespace sslab::video {

struct ReadOptions {
  int64_t width = 0;  // output size; 0 = the file's
  int64_t height = 0;
  std::string pixel_format = "gray";  // gray (C=1) or rgb (C=3)
  int threads = 1;                    // decoder threads (FFmpeg frame/slice threading); 0 = FFmpeg's choice
};

// One open video file: its demuxer, decoder and scaler. Reading clips again
// reuses all three (the decoder is flushed and the demuxer seeks). Not
// thread-safe: use one reader per thread.
class VideoReader {
 public:
  VideoReader(const std::string& path, ReadOptions options);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const std::string& path() const { return path_; }
  // Frames in the file: the container's count when it has one, else
  // duration x frame rate (an estimate for some containers, e.g. WebM).
  int64_t frame_count() const { return frame_count_; }
  double fps() const { return fps_; }
  int64_t source_width() const;
  int64_t source_height() const;
  std::string codec_name() const;

  // Frames start, start + stride, ... (count of them) as uint8 [count, C, H, W].
  // Seeks to the key frame before `start` when start > 0 (or when the
  // reader is already past it), then decodes forward. A file that ends
  // before the clip does throws DataError.
  torch::Tensor read_clip(int64_t start, int64_t count, int64_t stride = 1);
  // Every frame of the file.
  torch::Tensor read_all();
  // Frames decoded since the reader was opened (for tests and benchmarks:
  // shows whether a read seeked or decoded from the start).
  int64_t frames_decoded() const { return frames_decoded_; }

 private:
  struct State;
  bool next_frame();  // decodes the next frame into state; false at the end
  void seek_to(int64_t frame);
  torch::Tensor convert();  // the current frame -> [C,H,W] uint8
  [[noreturn]] void fail(const std::string& what, int err = 0) const;

  std::string path_;
  ReadOptions options_;
  std::unique_ptr<State> s_;
  int64_t frame_count_ = 0;
  double fps_ = 0;
  int64_t position_ = -1;  // index of the last decoded frame (-1: none since open/seek)
  int64_t frames_decoded_ = 0;
};

struct WriteOptions {
  std::string codec = "libx264";  // libavcodec encoder name: libx264, libvpx-vp9, mpeg4, ...
  int64_t fps = 10;
  int64_t crf = 18;                 // quality for x264/vp9 (lower = better)
  int64_t bitrate = 0;              // bits/s for encoders without crf (mpeg4); 0: 2 Mbit/s
  int64_t gop = 10;                 // key frame interval
  std::string preset = "veryfast";  // x264 preset
};

// Encodes frames into a file whose container follows the extension (.mp4,
// .webm, .avi, .mkv). Frames are uint8 [C,H,W] with C = 1 (gray) or 3 (RGB)
// and all of the first frame's size (even width and height for 4:2:0).
class VideoWriter {
 public:
  VideoWriter(const std::string& path, WriteOptions options);
  ~VideoWriter();  // finishes the file if close() was not called (errors ignored)
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const torch::Tensor& frame);
  void close();  // flushes the encoder and writes the trailer

 private:
  struct State;
  void open(int64_t channels, int64_t height, int64_t width);
  void drain(bool flush);
  [[noreturn]] void fail(const std::string& what, int err = 0) const;

  std::string path_;
  WriteOptions options_;
  std::unique_ptr<State> s_;
  int64_t next_pts_ = 0;
  bool closed_ = false;
};

// Writes a clip uint8 [T,C,H,W] to a file in one call.
void write_video(const std::string& path, const torch::Tensor& frames, const WriteOptions& options = {});

// The text of an FFmpeg error code.
std::string av_error_text(int err);

}  // namespace sslab::video
