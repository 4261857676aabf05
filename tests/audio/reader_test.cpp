// The reader on files it writes itself: every format libsndfile writes here
// (WAV, FLAC, Ogg Vorbis, Ogg Opus), other rates and channel counts, the
// espeak-ng placeholder-size WAV, truncated and non-audio files.
#include <filesystem>
#include <fstream>

#include "audio_io.h"
#include "audio_test_util.h"

namespace {

using audio_test::dominant_hz;
using audio_test::sine;
using audio_test::write_sound;
using sslab_test::TempDir;
using sslab_test::user_error;
namespace fs = std::filesystem;

struct Case {
  const char* name;
  int format;
  int rate;
  int channels;
  double tolerance;  // max |error| against the written signal; < 0: not compared (Opus shifts phase)
};

class ReaderFormats : public ::testing::TestWithParam<Case> {};

// A 440 Hz sine in the left channel (a 440 Hz sine in every channel for
// mono), resampled to 16 kHz: the length is the duration at 16 kHz, the tone
// is still 440 Hz, and a stereo file with silence on the right mixes down to
// half the amplitude.
TEST_P(ReaderFormats, DecodesMixesDownAndResamples) {
  const Case c = GetParam();
  TempDir dir;
  const double seconds = 0.5;
  auto tone = sine(440, seconds, c.rate);
  std::vector<float> frames;
  for (float s : tone)
    for (int ch = 0; ch < c.channels; ++ch) frames.push_back(ch == 0 ? s : 0.0f);
  std::string path = dir / (std::string("clip.") + c.name);
  write_sound(path, frames, c.channels, c.rate, c.format);

  auto decoded = sslab::audio::decode_audio(path);
  EXPECT_EQ(decoded.sample_rate, c.rate);
  EXPECT_EQ(decoded.channels, c.channels);
  const double expected_amp = 0.5 / c.channels;
  // Codecs with a delay (Opus) may pad; the decoded duration is at least the written one.
  ASSERT_GE(decoded.samples.size(), tone.size());
  double err = 0;
  for (size_t i = 0; c.tolerance >= 0 && i < tone.size(); ++i)
    err = std::max(err, static_cast<double>(std::abs(decoded.samples[i] - tone[i] / c.channels)));
  EXPECT_LT(err, std::max(c.tolerance, 0.0) + 1e-12) << "max error " << err;

  torch::Tensor wave = sslab::audio::load_wave(path, 16000);
  const int64_t want = std::llround(static_cast<double>(decoded.samples.size()) * 16000 / c.rate);
  EXPECT_EQ(wave.size(0), want);
  EXPECT_NEAR(dominant_hz(wave, 16000), 440.0, 16000.0 / wave.size(0) + 1e-9);
  // Amplitude survives the resampler (away from the filter's edges).
  double peak = wave.slice(0, 800, wave.size(0) - 800).abs().max().item<double>();
  EXPECT_NEAR(peak, expected_amp, 0.08 * expected_amp + (c.tolerance < 0 ? 0.1 : c.tolerance));
}

INSTANTIATE_TEST_SUITE_P(Formats, ReaderFormats,
                         ::testing::Values(Case{"wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1e-3},
                                           Case{"wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, 1e-6},
                                           Case{"flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 1, 1e-3},
                                           Case{"flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 48000, 2, 1e-4},
                                           Case{"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 22050, 1, 0.1},
                                           Case{"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 8000, 2, 0.1},
                                           Case{"opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 2, -1},
                                           Case{"opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 16000, 1, -1}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name) + "_" + std::to_string(info.param.rate) + "Hz_" +
                                  std::to_string(info.param.channels) + "ch";
                         });

// espeak-ng --stdout cannot seek back, so its WAV header claims 0x7ffff000
// data bytes: the reader takes what the file holds.
TEST(Reader, ToleratesPlaceholderWavDataSize) {
  TempDir dir;
  const int rate = 22050;
  auto tone = sine(300, 0.25, rate);
  std::vector<int16_t> pcm(tone.size());
  for (size_t i = 0; i < tone.size(); ++i) pcm[i] = static_cast<int16_t>(std::lround(tone[i] * 32767));
  auto u32 = [](std::ofstream& o, uint32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](std::ofstream& o, uint16_t v) { o.write(reinterpret_cast<const char*>(&v), 2); };
  std::string path = dir / "stdout.wav";
  {
    std::ofstream o(path, std::ios::binary);
    o.write("RIFF", 4);
    u32(o, 0x7ffff024);
    o.write("WAVEfmt ", 8);
    u32(o, 16);
    u16(o, 1);
    u16(o, 1);
    u32(o, rate);
    u32(o, rate * 2);
    u16(o, 2);
    u16(o, 16);
    o.write("data", 4);
    u32(o, 0x7ffff000);
    o.write(reinterpret_cast<const char*>(pcm.data()), static_cast<std::streamsize>(pcm.size() * 2));
  }
  auto decoded = sslab::audio::decode_audio(path);
  ASSERT_EQ(decoded.samples.size(), tone.size());
  EXPECT_NEAR(decoded.samples[100], tone[100], 1e-4);
  EXPECT_EQ(sslab::audio::load_wave(path, 16000).size(0), std::llround(tone.size() * 16000.0 / rate));
}

// A header that lies about the rate or the channel count (8 channels at
// 1 Hz over ordinary PCM data would be resampled 16,000-fold): refused with
// the file named, before anything is allocated from it.
TEST(Reader, AHeaderThatLiesIsRefusedBeforeItDrivesAllocations) {
  TempDir dir;
  auto write_wav = [&](const std::string& name, uint32_t rate, uint16_t channels) {
    auto u32 = [](std::ofstream& o, uint32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [](std::ofstream& o, uint16_t v) { o.write(reinterpret_cast<const char*>(&v), 2); };
    std::string path = dir / name;
    std::ofstream o(path, std::ios::binary);
    const uint32_t bytes = 16000 * 2;
    o.write("RIFF", 4);
    u32(o, 36 + bytes);
    o.write("WAVEfmt ", 8);
    u32(o, 16);
    u16(o, 1);
    u16(o, channels);
    u32(o, rate);
    u32(o, rate * 2u * channels);
    u16(o, static_cast<uint16_t>(2 * channels));
    u16(o, 16);
    o.write("data", 4);
    u32(o, bytes);
    std::vector<char> pcm(bytes, 1);
    o.write(pcm.data(), bytes);
    return path;
  };
  std::string slow = write_wav("one_hz.wav", 1, 8);
  std::string msg = user_error([&] { sslab::audio::load_wave(slow, 16000); });
  EXPECT_NE(msg.find(slow + ": implausible sample rate 1 Hz"), std::string::npos) << msg;
  std::string fast = write_wav("fast.wav", 4000000, 1);
  msg = user_error([&] { sslab::audio::decode_audio(fast); });
  EXPECT_NE(msg.find("implausible sample rate 4000000 Hz"), std::string::npos) << msg;
  std::string wide = write_wav("wide.wav", 16000, 200);
  msg = user_error([&] { sslab::audio::decode_audio(wide); });
  EXPECT_NE(msg.find(wide), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("implausible channel count 200") != std::string::npos ||
              msg.find("not a readable audio file") != std::string::npos)
      << msg;
  // The bounds themselves are accepted.
  EXPECT_EQ(sslab::audio::decode_audio(write_wav("low.wav", sslab::audio::kMinSampleRate, 1)).sample_rate,
            sslab::audio::kMinSampleRate);
}

// A file cut in half: WAV (declared data size larger than the file), FLAC
// and Ogg Vorbis: a DataError naming the file.
TEST(Reader, TruncatedFilesNameTheFile) {
  TempDir dir;
  struct F {
    const char* name;
    int format;
  };
  for (F f : {F{"cut.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16}, F{"cut.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16},
              F{"cut.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS}}) {
    std::string path = dir / f.name;
    write_sound(path, sine(440, 2.0, 16000), 1, 16000, f.format);
    fs::resize_file(path, fs::file_size(path) / 2);
    std::string msg = user_error([&] { sslab::audio::decode_audio(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << f.name << ": " << msg;
    // libsndfile refuses a cut Ogg stream as malformed at open; WAV and FLAC are caught by their declared length.
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("malformed") != std::string::npos)
        << f.name << ": " << msg;
    try {
      sslab::audio::decode_audio(path);
    } catch (const sslab::DataError& e) {
      EXPECT_EQ(e.path(), path);
    } catch (...) {
      ADD_FAILURE() << f.name << ": not a DataError";
    }
  }
}

// Every way of cutting an Ogg Vorbis file short (inside a page, or exactly
// at a page boundary so that no end-of-stream page remains) and a damaged
// byte are refused naming the file; libsndfile alone reads about half of
// such files as shorter valid clips.
TEST(Reader, OggCutAnywhereOrDamagedIsRefused) {
  TempDir dir;
  std::string whole = dir / "whole.ogg";
  write_sound(whole, sine(440, 10.0, 16000), 1, 16000, SF_FORMAT_OGG | SF_FORMAT_VORBIS);
  std::string bytes = sslab_test::read_text(whole);
  ASSERT_EQ(sslab::audio::decode_audio(whole).samples.size(), 160000u);
  std::vector<size_t> cuts;
  for (size_t at = bytes.find("OggS", 1); at != std::string::npos; at = bytes.find("OggS", at + 1)) cuts.push_back(at);
  ASSERT_GE(cuts.size(), 2u);  // page boundaries: the header pages and at least one audio page
  for (int i = 1; i < 40; ++i) cuts.push_back(bytes.size() * static_cast<size_t>(i) / 40);
  cuts.push_back(bytes.size() - 1);
  for (size_t cut : cuts) {
    std::string path = dir.write("cut-" + std::to_string(cut) + ".ogg", bytes.substr(0, cut));
    std::string msg = user_error([&] { sslab::audio::decode_audio(path); });
    EXPECT_NE(msg.find(path + ": "), std::string::npos) << "cut at " << cut << ": " << msg;
  }
  std::string damaged = bytes;
  damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 0x5a);
  std::string path = dir.write("damaged.ogg", damaged);
  std::string msg = user_error([&] { sslab::audio::decode_audio(path); });
  EXPECT_NE(msg.find("fails its checksum"), std::string::npos) << msg;
}

// A RIFF chunk size near 4 GiB must not wrap the chunk walk around to the
// start of the file (found by fuzzing: a 71-byte file hung the reader).
TEST(Reader, HugeChunkSizeDoesNotLoopForever) {
  TempDir dir;
  std::string bytes = std::string("RIFF") + std::string("\x40\0\0\0", 4) + "WAVE" + "junk" +
                      std::string("\xf8\xff\xff\xff", 4) + std::string(40, '\0');
  std::string path = dir.write("loop.wav", bytes);
  std::string msg = user_error([&] { sslab::audio::decode_audio(path); });
  EXPECT_NE(msg.find(path + ": "), std::string::npos) << msg;
}

TEST(Reader, NonAudioAndEmptyFilesNameTheFile) {
  TempDir dir;
  std::string text = dir.write("notes.wav", "this is not audio at all, just some text in a file\n");
  std::string msg = user_error([&] { sslab::audio::decode_audio(text); });
  EXPECT_NE(msg.find(text + ": not a readable audio file"), std::string::npos) << msg;
  std::string empty = dir.write("empty.flac", "");
  msg = user_error([&] { sslab::audio::load_wave(empty, 16000); });
  EXPECT_NE(msg.find(empty + ": the file is empty"), std::string::npos) << msg;
  msg = user_error([&] { sslab::audio::decode_audio(dir / "missing.ogg"); });
  EXPECT_NE(msg.find("missing.ogg: cannot open the file"), std::string::npos) << msg;
}

TEST(Resample, PreservesDurationAndTone) {
  auto tone = sine(1000, 1.0, 44100);
  auto out = sslab::audio::resample(tone, 44100, 16000);
  ASSERT_EQ(out.size(), 16000u);
  torch::Tensor w = torch::from_blob(out.data(), {16000}, torch::kFloat32).clone();
  EXPECT_NEAR(dominant_hz(w, 16000), 1000.0, 1.0);
  // Up-sampling, too.
  auto up = sslab::audio::resample(sine(200, 0.5, 8000), 8000, 16000);
  EXPECT_EQ(up.size(), 8000u);
  // A tone above the new Nyquist frequency is filtered out, not aliased.
  auto high = sslab::audio::resample(sine(7000, 1.0, 44100), 44100, 8000);
  torch::Tensor h = torch::from_blob(high.data(), {static_cast<int64_t>(high.size())}, torch::kFloat32);
  EXPECT_LT(h.slice(0, 400, -400).abs().max().item<double>(), 0.02);
}

// ---- the resample cache

TEST(ResampleCache, SecondReadComesFromTheCacheAndEqualsTheResampledClip) {
  TempDir dir;
  const std::string path = dir / "tone.wav", cache = dir / "cache";
  write_sound(path, sine(440, 0.5, 22050), 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  const torch::Tensor direct = sslab::audio::load_wave(path, 16000);
  const torch::Tensor first = sslab::audio::load_wave_cached(path, 16000, cache);
  EXPECT_TRUE(torch::equal(first, direct));
  const std::string file = sslab::audio::wave_cache_file(path, 16000, cache);
  ASSERT_TRUE(fs::exists(file));
  // The second read is the cache file: with the source's bytes garbled (same
  // size and modification time, so the same key) it still returns the clip.
  const auto size = fs::file_size(path);
  const auto mtime = fs::last_write_time(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(size, 'x');
  fs::last_write_time(path, mtime);
  EXPECT_TRUE(torch::equal(sslab::audio::load_wave_cached(path, 16000, cache), direct));
  EXPECT_NE(user_error([&] { sslab::audio::load_wave(path, 16000); }), "<no exception>");
  EXPECT_NE(sslab::audio::wave_cache_file(path, 8000, cache), file);  // another rate, another entry
}

TEST(ResampleCache, DamagedOrCutCacheFilesAreReplaced) {
  TempDir dir;
  const std::string path = dir / "tone.wav", cache = dir / "cache";
  write_sound(path, sine(300, 0.25, 22050), 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  const torch::Tensor direct = sslab::audio::load_wave(path, 16000);
  sslab::audio::load_wave_cached(path, 16000, cache);
  const std::string file = sslab::audio::wave_cache_file(path, 16000, cache);
  const auto size = fs::file_size(file);
  {  // one flipped bit in the samples: the checksum catches it
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 3));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size - 3));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }
  EXPECT_TRUE(torch::equal(sslab::audio::load_wave_cached(path, 16000, cache), direct));
  fs::resize_file(file, size / 2);  // cut
  EXPECT_TRUE(torch::equal(sslab::audio::load_wave_cached(path, 16000, cache), direct));
  EXPECT_EQ(fs::file_size(file), size);  // written whole again
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "SSLWAVE1 and then nonsense";
  EXPECT_TRUE(torch::equal(sslab::audio::load_wave_cached(path, 16000, cache), direct));
  EXPECT_EQ(fs::file_size(file), size);
}

TEST(ResampleCache, AChangedSourceIsReadAgain) {
  TempDir dir;
  const std::string path = dir / "clip.wav", cache = dir / "cache";
  write_sound(path, sine(440, 0.5, 22050), 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  const torch::Tensor a = sslab::audio::load_wave_cached(path, 16000, cache);
  write_sound(path, sine(1000, 0.75, 22050), 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  const torch::Tensor b = sslab::audio::load_wave_cached(path, 16000, cache);
  EXPECT_EQ(b.size(0), 12000);
  EXPECT_NEAR(dominant_hz(b, 16000), 1000, 5);
  EXPECT_FALSE(a.size(0) == b.size(0));
}

TEST(ResampleCache, UnwritableCacheStillLoadsAndBadSourcesNameTheSource) {
  TempDir dir;
  const std::string path = dir / "tone.wav";
  write_sound(path, sine(440, 0.25, 22050), 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  std::ofstream(dir / "not_a_folder") << "a file where the cache folder should be";
  const torch::Tensor wave = sslab::audio::load_wave_cached(path, 16000, dir / "not_a_folder/cache");
  EXPECT_TRUE(torch::equal(wave, sslab::audio::load_wave(path, 16000)));
  std::ofstream(dir / "text.wav") << "not audio";
  std::string msg = user_error([&] { sslab::audio::load_wave_cached(dir / "text.wav", 16000, dir / "cache"); });
  EXPECT_NE(msg.find("text.wav"), std::string::npos) << msg;
  msg = user_error([&] { sslab::audio::load_wave_cached(dir / "missing.wav", 16000, dir / "cache"); });
  EXPECT_NE(msg.find("missing.wav"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "cache") && !fs::is_empty(dir / "cache"));
}

}  // namespace
