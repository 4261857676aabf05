// Writes the seed corpora of the binary fuzz targets: small valid files of
// every kind each reader takes (tools/fuzz.sh runs it once per build tree).
//   fuzz_make_seeds OUT_DIR     -> OUT_DIR/<target>/<seed files>
// The recipe targets' seeds are text: recipes/ and fuzz/seeds/.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <sndfile.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

#include <sslab/host/checkpoint.h>

#include "../modalities/video/video_io.h"

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string idx(const std::vector<int>& dims) {
  std::string s{0, 0, 8, static_cast<char>(dims.size())};
  size_t count = 1;
  for (int d : dims) {
    s += {0, 0, static_cast<char>(d >> 8), static_cast<char>(d & 0xff)};
    count *= static_cast<size_t>(d);
  }
  for (size_t i = 0; i < count; ++i) s += static_cast<char>(i * 37 % 256);
  return s;
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  if (!f || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()) ||
      gzclose(f) != Z_OK)
    throw std::runtime_error("cannot write " + path.string());
}

void idx_seeds(const fs::path& dir) {
  write_file(dir / "labels.idx", idx({10}));
  write_file(dir / "images.idx", idx({2, 4, 4}));
  write_gzip(dir / "images.idx.gz", idx({2, 4, 4}));
}

void image_seeds(const fs::path& dir) {
  const int w = 8, h = 6;
  std::vector<unsigned char> rgb(w * h * 3), grey(w * h);
  for (int i = 0; i < w * h; ++i) {
    grey[i] = static_cast<unsigned char>(i * 5);
    for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = static_cast<unsigned char>(i * 7 + c * 60);
  }
  const std::string d = dir.string() + "/";
  bool ok = stbi_write_png((d + "rgb.png").c_str(), w, h, 3, rgb.data(), w * 3) &&
            stbi_write_png((d + "grey.png").c_str(), w, h, 1, grey.data(), w) &&
            stbi_write_bmp((d + "rgb.bmp").c_str(), w, h, 3, rgb.data()) &&
            stbi_write_tga((d + "rgb.tga").c_str(), w, h, 3, rgb.data()) &&
            stbi_write_jpg((d + "rgb.jpg").c_str(), w, h, 3, rgb.data(), 90) &&
            stbi_write_jpg((d + "grey.jpg").c_str(), w, h, 1, grey.data(), 90);
  if (!ok) throw std::runtime_error("cannot write the image seeds");
}

void text_seeds(const fs::path& dir) {
  write_file(dir / "lines.txt",
             "first line\nzweite Zeile \xc3\xa4\xc3\xb6\n\n  \ttrimmed  \r\n\xe2\x82\xac \xf0\x9f\x98\x80\nlast");
  write_file(dir / "fortune.txt",
             "A fortune\non two lines.\n%\n\xc2\xbf Qu\xc3\xa9?\r\n%\n%\n  \n%\nbad \xc3\x28 byte\n%\nend\n");
}

void sound(const fs::path& path, int channels, int rate, int format) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw std::runtime_error(path.string() + ": " + sf_strerror(nullptr));
  std::vector<float> frames(400 * static_cast<size_t>(channels));
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = 0.5f * std::sin(0.05f * static_cast<float>(i));
  sf_writef_float(f, frames.data(), 400);
  sf_close(f);
}

void audio_seeds(const fs::path& dir) {
  sound(dir / "mono16.wav", 1, 8000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  sound(dir / "stereo_float.wav", 2, 22050, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  sound(dir / "mono.flac", 1, 16000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
  sound(dir / "mono.ogg", 1, 8000, SF_FORMAT_OGG | SF_FORMAT_VORBIS);
}

void video_seeds(const fs::path& dir) {
  torch::Tensor frames =
      torch::arange(4 * 16 * 16, torch::kInt64).remainder(251).to(torch::kUInt8).view({4, 1, 16, 16});
  sslab::video::WriteOptions o;
  o.gop = 2;
  sslab::video::write_video((dir / "h264.mp4").string(), frames, o);
  o.codec = "mpeg4";
  o.bitrate = 100000;
  sslab::video::write_video((dir / "mpeg4.avi").string(), frames, o);
  o.codec = "libvpx-vp9";
  sslab::video::write_video((dir / "vp9.webm").string(), frames, o);
}

void checkpoint_seeds(const fs::path& dir) {
  torch::manual_seed(0);
  sslab::CheckpointWriter out;
  out.scalar("step", 7);
  out.bytes("recipe", "name = \"fuzz\"\n[train]\nsteps = 7\n");
  torch::nn::Linear model(4, 2);
  out.module("model/encoder", *model);
  out.save((dir / "step-000000007.pt").string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  const std::pair<const char*, void (*)(const fs::path&)> kinds[] = {
      {"idx", idx_seeds},     {"image", image_seeds}, {"text", text_seeds},
      {"audio", audio_seeds}, {"video", video_seeds}, {"checkpoint", checkpoint_seeds}};
  try {
    for (const auto& [name, make] : kinds) {
      fs::create_directories(out / name);
      make(out / name);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
