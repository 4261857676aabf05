// Reading audio files: libsndfile decodes (WAV, FLAC, Ogg Vorbis/Opus, ...),
// channels are mixed down to mono, and FFmpeg's libswresample converts to the
// requested sample rate. Bad files throw sslab::DataError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sslab::audio {

// A decoded clip: mono samples in [-1, 1] at the file's own rate.
struct DecodedAudio {
  std::vector<float> samples;
  int64_t sample_rate = 0;
  int64_t channels = 0;  // channels in the file (before the mixdown)
};

// What a file's header may claim: outside these bounds it is refused (a
// lying header must not drive allocations; real audio lies within them).
inline constexpr int kMinSampleRate = 1000;
inline constexpr int kMaxSampleRate = 768000;
inline constexpr int kMaxChannels = 64;

// Decodes `path` and mixes its channels down to mono (their mean).
// A WAV whose data size is a streaming placeholder (espeak-ng --stdout writes
// 0x7ffff000) is read to the end of the file; a WAV whose real declared size
// exceeds the file, a truncated compressed stream, a non-audio or empty file
// each throw DataError(path, why).
DecodedAudio decode_audio(const std::string& path);

// Resamples mono samples with libswresample (polyphase sinc filter);
// returns the input unchanged when the rates are equal. `what` names the
// source in errors.
std::vector<float> resample(const std::vector<float>& samples, int64_t from_rate, int64_t to_rate,
                            const std::string& what = "");

// decode_audio + resample: a float32 tensor [S] at `sample_rate`.
torch::Tensor load_wave(const std::string& path, int64_t sample_rate);

// load_wave through a cache of resampled clips in `cache_dir` ("": none).
// The first read of a file decodes and resamples it and stores the result
// (float32 at sample_rate, with a checksum) as <cache_dir>/<key>.f32, the
// key hashed from the file's absolute path, size, modification time and the
// rate; later reads return it with one read of the file. A cache file that
// does not read back whole (cut, damaged, another version) is decoded again
// and replaced; a cache that cannot be written is skipped with one warning.
// A changed source file gets a new key, so a stale clip is never returned.
torch::Tensor load_wave_cached(const std::string& path, int64_t sample_rate, const std::string& cache_dir);

// The cache file load_wave_cached uses for `path` at `sample_rate` (for
// tests and tools); throws DataError when `path` cannot be examined.
std::string wave_cache_file(const std::string& path, int64_t sample_rate, const std::string& cache_dir);

// The number of samples libsndfile decodes from `path` (raw read, no mixdown
// or resampling) and its rate; for benchmarks. Throws DataError.
int64_t raw_read_frames(const std::string& path, int64_t* sample_rate = nullptr);

}  // namespace sslab::audio
