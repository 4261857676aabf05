#include "transforms.h"

#include <cmath>
#include <random>

namespace sslab::audio {
namespace {

double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
bool chance(Rng& rng, double p) { return p >= 1.0 || (p > 0 && uniform(rng, 0, 1) < p); }
int64_t uniform_int(Rng& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

void check_wave(const torch::Tensor& wave, const char* what) {
  SSLAB_CHECK(wave.dim() == 1, what, ": expected a mono wave [S], got ", wave.sizes());
}

}  // namespace

torch::Tensor RandomCrop::apply(const torch::Tensor& wave, Rng& rng) const {
  check_wave(wave, "audio.random_crop");
  const int64_t s = wave.size(0);
  if (s <= samples_) return wave;
  return wave.narrow(0, uniform_int(rng, 0, s - samples_), samples_).clone();
}

torch::Tensor Gain::apply(const torch::Tensor& wave, Rng& rng) const {
  if (!chance(rng, p_)) return wave;
  const double db = uniform(rng, min_db_, max_db_);
  return wave * std::pow(10.0, db / 20.0);
}

torch::Tensor AddNoise::apply(const torch::Tensor& wave, Rng& rng) const {
  check_wave(wave, "audio.noise");
  if (!chance(rng, p_)) return wave;
  const double snr_db = uniform(rng, min_, max_);
  const double power = wave.to(torch::kFloat64).pow(2).mean().item<double>();
  if (power <= 0) return wave;
  const double sigma = std::sqrt(power / std::pow(10.0, snr_db / 10.0));
  // Noise from the per-sample Rng (not torch's generator: worker threads).
  std::normal_distribution<float> gauss(0.0f, static_cast<float>(sigma));
  torch::Tensor out = wave.contiguous().clone();
  float* p = out.data_ptr<float>();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] += gauss(rng);
  return out;
}

torch::Tensor TimeShift::apply(const torch::Tensor& wave, Rng& rng) const {
  check_wave(wave, "audio.time_shift");
  const int64_t s = wave.size(0);
  const int64_t shift = uniform_int(rng, -max_, max_);
  if (shift == 0 || s == 0) return wave;
  if (circular_) return torch::roll(wave, {shift}, {0});
  torch::Tensor out = torch::zeros_like(wave);
  const int64_t n = s - std::abs(shift);
  if (n <= 0) return out;
  if (shift > 0)
    out.narrow(0, shift, n).copy_(wave.narrow(0, 0, n));
  else
    out.narrow(0, 0, n).copy_(wave.narrow(0, -shift, n));
  return out;
}

torch::Tensor TimeMask::apply(const torch::Tensor& wave, Rng& rng) const {
  check_wave(wave, "audio.time_mask");
  if (!chance(rng, p_)) return wave;
  torch::Tensor out = wave.clone();
  const int64_t s = wave.size(0);
  for (int64_t i = 0; i < count_; ++i) {
    const int64_t width = std::min(s, uniform_int(rng, 0, max_));
    if (width == 0) continue;
    out.narrow(0, uniform_int(rng, 0, s - width), width).zero_();
  }
  return out;
}

torch::Tensor mel_filterbank(int64_t n_fft, int64_t n_mels, int64_t sample_rate, double f_min, double f_max) {
  auto hz_to_mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  const int64_t bins = n_fft / 2 + 1;
  torch::Tensor freqs = torch::linspace(0, sample_rate / 2.0, bins, torch::kFloat64);
  torch::Tensor mels = torch::linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, torch::kFloat64);
  torch::Tensor pts = 700.0 * (torch::pow(10.0, mels / 2595.0) - 1.0);  // n_mels + 2 edges in Hz
  torch::Tensor diff = pts.slice(0, 1) - pts.slice(0, 0, -1);           // [n_mels + 1]
  torch::Tensor slopes = pts.unsqueeze(0) - freqs.unsqueeze(1);         // [bins, n_mels + 2]
  torch::Tensor down = -slopes.slice(1, 0, -2) / diff.slice(0, 0, -1);
  torch::Tensor up = slopes.slice(1, 2) / diff.slice(0, 1);
  return torch::clamp_min(torch::min(down, up), 0.0).to(torch::kFloat32);
}

LogMel::LogMel(LogMelOptions options) : options_(options) {
  if (options_.f_max <= 0) options_.f_max = options_.sample_rate / 2.0;
  SSLAB_CHECK(options_.f_min < options_.f_max, "audio.logmel: f_min (", options_.f_min, ") must be below f_max (",
              options_.f_max, ")");
  window_ = torch::hann_window(options_.n_fft, torch::kFloat32);
  filters_ = mel_filterbank(options_.n_fft, options_.n_mels, options_.sample_rate, options_.f_min, options_.f_max);
}

torch::Tensor LogMel::features(const torch::Tensor& wave) const {
  SSLAB_CHECK(wave.dim() == 1 || wave.dim() == 2, "audio.logmel: expected a wave [S] or [B,S], got ", wave.sizes());
  torch::Tensor x = wave.to(torch::kFloat32);
  // Reflect padding needs more samples than half the window.
  const int64_t need = options_.n_fft / 2 + 1;
  if (x.size(-1) < need) x = torch::constant_pad_nd(x, {0, need - x.size(-1)}, 0);
  torch::Tensor spec = torch::stft(x, options_.n_fft, options_.hop, options_.n_fft, window_.to(x.device()),
                                   /*center=*/true, "reflect", /*normalized=*/false, /*onesided=*/true,
                                   /*return_complex=*/true);  // [.., bins, T]
  torch::Tensor power = torch::real(spec * torch::conj(spec));
  torch::Tensor mel = torch::matmul(power.transpose(-1, -2), filters_.to(x.device()));  // [.., T, n_mels]
  // Frames of the unpadded input only: 1 + S / hop.
  const int64_t frames = 1 + wave.size(-1) / options_.hop;
  if (mel.size(-2) > frames) mel = mel.narrow(-2, 0, frames);
  return torch::log(mel + options_.floor);
}

torch::Tensor LogMel::apply(const torch::Tensor& wave, Rng&) const {
  check_wave(wave, "audio.logmel");
  return features(wave);
}

}  // namespace sslab::audio
