// The FFmpeg reader and writer: each container/codec round-trips a known
// pattern, clips seek instead of decoding from the start, frames are resized
// and converted to RGB, and bad files throw DataError naming the file.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "video_test_util.h"

namespace {

using sslab::DataError;
using sslab::video::ReadOptions;
using sslab::video::VideoReader;
using sslab_test::TempDir;
using video_test::pattern_index;
using video_test::write_pattern;

struct Format {
  std::string codec, ext, decoder;
};
void PrintTo(const Format& f, std::ostream* os) { *os << f.codec << " in " << f.ext; }

class VideoDecode : public ::testing::TestWithParam<Format> {};

TEST_P(VideoDecode, FramesSizeAndPixelsOfAKnownPattern) {
  TempDir dir;
  const Format f = GetParam();
  const std::string path = write_pattern(dir / ("clip" + f.ext), f.codec, 24);
  VideoReader reader(path, ReadOptions{});
  EXPECT_EQ(reader.codec_name(), f.decoder);
  EXPECT_EQ(reader.source_width(), 64);
  EXPECT_EQ(reader.source_height(), 48);
  EXPECT_NEAR(reader.fps(), 10.0, 1e-6);
  EXPECT_EQ(reader.frame_count(), 24);
  torch::Tensor all = reader.read_all();
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{24, 1, 48, 64}));
  torch::Tensor expected = video_test::pattern_clip(24, 48, 64).to(torch::kFloat32);
  // Lossy coding of flat areas: within a few grey levels on average.
  torch::Tensor err = (all.to(torch::kFloat32) - expected).abs();
  EXPECT_LT(err.mean().item<double>(), 3.0);
  for (int64_t t = 0; t < 24; ++t) EXPECT_EQ(pattern_index(all[t]), t) << "frame " << t;
}

TEST_P(VideoDecode, ClipSeeksToItsFirstFrame) {
  TempDir dir;
  const Format f = GetParam();
  const std::string path = write_pattern(dir / ("long" + f.ext), f.codec, 60, 48, 64, /*gop=*/10);
  VideoReader reader(path, ReadOptions{});
  torch::Tensor clip = reader.read_clip(45, 3, 2);
  ASSERT_EQ(clip.size(0), 3);
  EXPECT_EQ(pattern_index(clip[0]), 45);
  EXPECT_EQ(pattern_index(clip[1]), 47);
  EXPECT_EQ(pattern_index(clip[2]), 49);
  // A seek to the key frame at 40 decodes ~10 frames, not the 50 before frame 49.
  EXPECT_LT(reader.frames_decoded(), 20);
  // Backwards in the same open file: seeks again.
  torch::Tensor back = reader.read_clip(3, 2, 1);
  EXPECT_EQ(pattern_index(back[0]), 3);
  EXPECT_EQ(pattern_index(back[1]), 4);
  // Past the end: a DataError naming the file.
  std::string msg = sslab_test::user_error([&] { reader.read_clip(55, 10, 1); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("ends after frame"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(Video, VideoDecode,
                         ::testing::Values(Format{"libx264", ".mp4", "h264"}, Format{"libvpx-vp9", ".webm", "vp9"},
                                           Format{"mpeg4", ".avi", "mpeg4"}),
                         [](const ::testing::TestParamInfo<Format>& info) { return info.param.ext.substr(1); });

TEST(VideoRead, ResizesAndConvertsToRgb) {
  TempDir dir;
  // Flat colours: R rises, G fixed, B falls with the frame index.
  std::vector<torch::Tensor> frames;
  for (int64_t t = 0; t < 8; ++t) {
    torch::Tensor f = torch::empty({3, 48, 64}, torch::kUInt8);
    f[0].fill_(static_cast<uint8_t>(40 + 20 * t));
    f[1].fill_(128);
    f[2].fill_(static_cast<uint8_t>(220 - 20 * t));
    frames.push_back(f);
  }
  sslab::video::write_video(dir / "rgb.mp4", torch::stack(frames), {});
  ReadOptions o;
  o.width = 32;
  o.height = 24;
  o.pixel_format = "rgb";
  o.threads = 2;
  VideoReader reader(dir / "rgb.mp4", o);
  torch::Tensor clip = reader.read_clip(2, 4, 1);
  ASSERT_EQ(clip.sizes(), (std::vector<int64_t>{4, 3, 24, 32}));
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t t = 2 + i;
    torch::Tensor mean = clip[i].to(torch::kFloat64).mean({1, 2});
    EXPECT_NEAR(mean[0].item<double>(), 40 + 20 * t, 6) << "R of frame " << t;
    EXPECT_NEAR(mean[1].item<double>(), 128, 6) << "G of frame " << t;
    EXPECT_NEAR(mean[2].item<double>(), 220 - 20 * t, 6) << "B of frame " << t;
  }
  // Gray of the same file: one channel at the luma.
  VideoReader gray(dir / "rgb.mp4", ReadOptions{});
  EXPECT_EQ(gray.read_clip(0, 1).size(1), 1);
}

TEST(VideoRead, RealH264ClipFromImageio) {
  const std::string path = "/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "python3-imageio is not installed";
  ReadOptions o;
  o.width = 64;
  o.height = 36;
  VideoReader whole(path, o);
  EXPECT_EQ(whole.source_width(), 1280);
  EXPECT_EQ(whole.source_height(), 720);
  EXPECT_EQ(whole.frame_count(), 280);
  torch::Tensor all = whole.read_all();
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{280, 1, 36, 64}));
  // A clip read by seeking gives the same pixels as decoding the file in
  // order. (Frames 40..55 lie before the file's second key frame, at 76;
  // its key frames at 76 and 145 do not decode cleanly on their own, with
  // ffmpeg -ss as with sslab, so a seek there shows grey frames.)
  VideoReader reader(path, o);
  torch::Tensor clip = reader.read_clip(40, 4, 5);
  ASSERT_EQ(clip.sizes(), (std::vector<int64_t>{4, 1, 36, 64}));
  for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(clip[i], all[40 + 5 * i])) << "frame " << 40 + 5 * i;
  // A real scene: not a flat frame, and the sampled frames differ.
  EXPECT_GT(clip[0].to(torch::kFloat32).std().item<double>(), 20.0);
  EXPECT_GT((clip[0].to(torch::kFloat32) - clip[3].to(torch::kFloat32)).abs().mean().item<double>(), 0.5);
}

std::string open_error(const std::string& path) {
  return sslab_test::user_error([&] {
    VideoReader r(path, ReadOptions{});
    r.read_all();
  });
}

TEST(VideoErrors, ZeroByteFile) {
  TempDir dir;
  const std::string path = dir.write("empty.mp4", "");
  std::string msg = open_error(path);
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("cannot open as a video file"), std::string::npos) << msg;
}

TEST(VideoErrors, TextFileRenamedMp4) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "This is not a video, it is line " + std::to_string(i) + " of a text file.\n";
  const std::string path = dir.write("notes.mp4", text);
  std::string msg = open_error(path);
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_EQ(msg.find("<no exception>"), std::string::npos);
}

// Playlists and scripts name other files (or URLs): a data file must not
// pull them in. Each one here points at a real, readable clip beside it.
TEST(VideoErrors, PlaylistsAndConcatScriptsAreRefused) {
  TempDir dir;
  const std::string clip = dir / "real.mp4";
  write_pattern(clip, "libx264", 8, 32, 24);
  ASSERT_NO_THROW(VideoReader(clip, ReadOptions{}));
  const std::vector<std::pair<std::string, std::string>> files = {
      {"concat.mp4", "ffconcat version 1.0\nfile 'real.mp4'\nfile 'real.mp4'\n"},
      {"playlist.mp4", "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nreal.mp4\n#EXT-X-ENDLIST\n"},
      {"playlist.m3u8", "#EXTM3U\n#EXTINF:1.0,\n" + clip + "\n#EXT-X-ENDLIST\n"},
  };
  for (const auto& [name, text] : files) {
    const std::string path = dir.write(name, text);
    const std::string msg = open_error(path);
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("cannot open as a video file"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<no exception>"), std::string::npos) << name;
  }
  EXPECT_NE(open_error(dir / "concat.mp4").find("'concat' demuxer, which is not allowed"), std::string::npos)
      << open_error(dir / "concat.mp4");
}

// SSLAB_FFMPEG_DEMUXERS replaces the allowed list: without MP4's demuxer, an
// MP4 file is refused by name; with the default list it opens.
TEST(VideoErrors, AllowedDemuxersCanBeReplaced) {
  TempDir dir;
  const std::string clip = dir / "real.mp4";
  write_pattern(clip, "libx264", 8, 32, 24);
  ASSERT_EQ(setenv("SSLAB_FFMPEG_DEMUXERS", "matroska,webm", 1), 0);
  const std::string msg = open_error(clip);
  unsetenv("SSLAB_FFMPEG_DEMUXERS");
  EXPECT_NE(msg.find("'mov,mp4,m4a,3gp,3g2,mj2' demuxer, which is not allowed"), std::string::npos) << msg;
  EXPECT_NO_THROW(VideoReader(clip, ReadOptions{}));
}

TEST(VideoErrors, DataErrorCarriesThePath) {
  TempDir dir;
  const std::string path = dir.write("empty.webm", "");
  try {
    VideoReader r(path, ReadOptions{});
    FAIL() << "no exception";
  } catch (const DataError& e) {
    EXPECT_EQ(e.path(), path);
  }
}

void truncate_file(const std::string& path, double keep) {
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, static_cast<uintmax_t>(static_cast<double>(size) * keep));
}

class VideoTruncated : public ::testing::TestWithParam<Format> {};

TEST_P(VideoTruncated, ThrowsDataErrorInsteadOfCrashing) {
  TempDir dir;
  const Format f = GetParam();
  const std::string path = write_pattern(dir / ("cut" + f.ext), f.codec, 30);
  truncate_file(path, 0.5);
  // Either the container cannot be opened (MP4: the index is at the end) or
  // the stream ends early: both are DataErrors naming the file.
  std::string msg = sslab_test::user_error([&] {
    VideoReader r(path, ReadOptions{});
    r.read_clip(0, 30, 1);
  });
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
}

INSTANTIATE_TEST_SUITE_P(Video, VideoTruncated,
                         ::testing::Values(Format{"libx264", ".mp4", "h264"}, Format{"libvpx-vp9", ".webm", "vp9"},
                                           Format{"mpeg4", ".avi", "mpeg4"}),
                         [](const ::testing::TestParamInfo<Format>& info) { return info.param.ext.substr(1); });

TEST(VideoErrors, CorruptMiddleDoesNotCrash) {
  TempDir dir;
  const std::string path = write_pattern(dir / "corrupt.avi", "mpeg4", 30);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(path));
    f.seekp(size / 3);
    std::string junk(static_cast<size_t>(size / 3), '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // Decoders conceal some damage; what must not happen is a crash, a hang or
  // an error that does not name the file.
  try {
    VideoReader r(path, ReadOptions{});
    torch::Tensor all = r.read_all();
    EXPECT_GT(all.size(0), 0);
  } catch (const DataError& e) {
    EXPECT_EQ(e.path(), path);
  }
}

TEST(VideoWrite, UnknownEncoderAndBadFramesAreErrors) {
  TempDir dir;
  sslab::video::WriteOptions o;
  o.codec = "no-such-encoder";
  std::string msg =
      sslab_test::user_error([&] { sslab::video::write_video(dir / "x.mp4", video_test::pattern_clip(2, 16, 16), o); });
  EXPECT_NE(msg.find("no encoder 'no-such-encoder'"), std::string::npos) << msg;
  msg = sslab_test::user_error([&] {
    sslab::video::VideoWriter w(dir / "y.mp4", {});
    w.write(torch::zeros({2, 16, 16}, torch::kUInt8));
  });
  EXPECT_NE(msg.find("C = 1 or 3"), std::string::npos) << msg;
}

}  // namespace
