// Per-sample audio transforms on a mono wave [S]: random crop, the
// augmentations used by joint-embedding methods (gain, additive noise at a
// signal-to-noise ratio, time shift, time masking) and log-mel features.
// Randomness comes only from the loader's per-sample Rng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::audio {

// The recipe keys of the transforms below (audio.random_crop, audio.gain,
// audio.noise, audio.time_shift, audio.time_mask). Durations are in seconds
// at `sample_rate`; the plugin turns them into samples.
struct RandomCropOptions {
  double seconds = 1.0;
  int64_t sample_rate = 16000;
};
struct GainOptions {
  std::vector<double> db = {-6.0, 6.0};  // [min, max]
  double p = 1.0;
};
struct AddNoiseOptions {
  std::vector<double> snr_db = {10.0, 30.0};  // [min, max]
  double p = 0.5;
};
struct TimeShiftOptions {
  double max_seconds = 0.1;
  int64_t sample_rate = 16000;
  bool circular = false;
};
struct TimeMaskOptions {
  int64_t count = 2;
  double max_seconds = 0.05;
  int64_t sample_rate = 16000;
  double p = 0.5;
};

// A crop of n samples at a uniformly random offset (shorter waves pass whole;
// the loader pads them and records their length).
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(int64_t samples) : samples_(samples) {}
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;

 private:
  int64_t samples_;
};

// Multiplies by a gain drawn uniformly in [min_db, max_db] decibels, with probability p.
class Gain : public Transform {
 public:
  Gain(double min_db, double max_db, double p) : min_db_(min_db), max_db_(max_db), p_(p) {}
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;

 private:
  double min_db_, max_db_, p_;
};

// Adds white Gaussian noise at an SNR drawn uniformly in [min_snr_db,
// max_snr_db] (relative to the wave's mean power), with probability p.
class AddNoise : public Transform {
 public:
  AddNoise(double min_snr_db, double max_snr_db, double p) : min_(min_snr_db), max_(max_snr_db), p_(p) {}
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;

 private:
  double min_, max_, p_;
};

// Shifts by a whole number of samples drawn in [-max, max]: circularly
// (roll) or filling the vacated part with zeros.
class TimeShift : public Transform {
 public:
  TimeShift(int64_t max_samples, bool circular) : max_(max_samples), circular_(circular) {}
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;

 private:
  int64_t max_;
  bool circular_;
};

// Zeroes `count` spans, each of a width drawn in [0, max_samples] at a random
// place (SpecAugment's time masking on the waveform), with probability p.
class TimeMask : public Transform {
 public:
  TimeMask(int64_t count, int64_t max_samples, double p) : count_(count), max_(max_samples), p_(p) {}
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;

 private:
  int64_t count_, max_;
  double p_;
};

struct LogMelOptions {
  int64_t sample_rate = 16000;
  int64_t n_fft = 400;  // 25 ms at 16 kHz
  int64_t hop = 160;    // 10 ms
  int64_t n_mels = 40;
  double f_min = 0;
  double f_max = 0;     // 0: sample_rate / 2
  double floor = 1e-6;  // log(mel + floor)
};

// Triangular mel filterbank (HTK mel scale, no area normalisation; the
// torchaudio melscale_fbanks(norm=None, mel_scale="htk") matrix): [n_fft/2+1, n_mels].
torch::Tensor mel_filterbank(int64_t n_fft, int64_t n_mels, int64_t sample_rate, double f_min, double f_max);

// wave [S] or [B,S] -> log-mel [T, n_mels] or [B,T,n_mels], T = 1 + S / hop
// (centred frames, Hann window, power spectrum via torch::stft).
class LogMel : public Transform {
 public:
  explicit LogMel(LogMelOptions options);
  torch::Tensor apply(const torch::Tensor& wave, Rng& rng) const override;
  torch::Tensor features(const torch::Tensor& wave) const;
  const LogMelOptions& options() const { return options_; }

 private:
  LogMelOptions options_;
  torch::Tensor window_, filters_;
};

}  // namespace sslab::audio
