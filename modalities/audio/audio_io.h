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

// The number of samples libsndfile decodes from `path` (raw read, no mixdown
// or resampling) and its rate; for benchmarks. Throws DataError.
int64_t raw_read_frames(const std::string& path, int64_t* sample_rate = nullptr);

}  // namespace sslab::audio
