#include "transforms.h"

#include <cmath>

namespace sslab::vision {

namespace F = torch::nn::functional;

namespace {

double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
bool coin(Rng& rng, double p) { return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p; }
int64_t randint(Rng& rng, int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

void check_image(const torch::Tensor& image, const char* who) {
  SSLAB_CHECK(image.dim() == 3, who, ": expected an image [C,H,W], got ", image.sizes());
}

}  // namespace

// ---------------------------------------------------------------- random resized crop

RandomResizedCrop::RandomResizedCrop(int64_t size, std::vector<double> scale, std::vector<double> ratio)
    : size_(size), scale_(std::move(scale)), ratio_(std::move(ratio)) {
  SSLAB_CHECK(size_ > 0, "random_resized_crop: size must be > 0");
  SSLAB_CHECK(scale_.size() == 2 && scale_[0] > 0 && scale_[0] <= scale_[1] && scale_[1] <= 1,
              "random_resized_crop: scale must be [lo, hi] with 0 < lo <= hi <= 1");
  SSLAB_CHECK(ratio_.size() == 2 && ratio_[0] > 0 && ratio_[0] <= ratio_[1],
              "random_resized_crop: ratio must be [lo, hi] with 0 < lo <= hi");
}

torch::Tensor RandomResizedCrop::apply(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "random_resized_crop");
  const int64_t H = image.size(1), W = image.size(2);
  const double area = static_cast<double>(H * W);
  int64_t top = 0, left = 0, h = H, w = W;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * uniform(rng, scale_[0], scale_[1]);
    const double aspect = std::exp(uniform(rng, std::log(ratio_[0]), std::log(ratio_[1])));
    const auto cw = static_cast<int64_t>(std::llround(std::sqrt(target * aspect)));
    const auto ch = static_cast<int64_t>(std::llround(std::sqrt(target / aspect)));
    if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
      h = ch;
      w = cw;
      top = randint(rng, 0, H - h);
      left = randint(rng, 0, W - w);
      found = true;
    }
  }
  if (!found) {  // centre crop with the aspect ratio clamped into range
    const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
    if (in_ratio < ratio_[0]) {
      w = W;
      h = std::min<int64_t>(H, std::llround(static_cast<double>(w) / ratio_[0]));
    } else if (in_ratio > ratio_[1]) {
      h = H;
      w = std::min<int64_t>(W, std::llround(static_cast<double>(h) * ratio_[1]));
    }
    top = (H - h) / 2;
    left = (W - w) / 2;
  }
  torch::Tensor crop = image.slice(1, top, top + h).slice(2, left, left + w).unsqueeze(0);
  return F::interpolate(crop, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{size_, size_})
                                  .mode(torch::kBilinear)
                                  .align_corners(false))
      .squeeze(0)
      .clamp_(0.0, 1.0);
}

// ---------------------------------------------------------------- flip

torch::Tensor HorizontalFlip::apply(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "horizontal_flip");
  return coin(rng, p_) ? image.flip({2}) : image;
}

// ---------------------------------------------------------------- colour jitter

torch::Tensor ColorJitter::apply(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "color_jitter");
  if (!coin(rng, p_)) return image;
  const double b = uniform(rng, std::max(0.0, 1.0 - brightness_), 1.0 + brightness_);
  const double c = uniform(rng, std::max(0.0, 1.0 - contrast_), 1.0 + contrast_);
  const bool brightness_first = coin(rng, 0.5);
  auto adjust_brightness = [&](const torch::Tensor& x) { return (x * b).clamp_(0.0, 1.0); };
  auto adjust_contrast = [&](const torch::Tensor& x) {
    torch::Tensor grey = x;
    if (x.size(0) == 3) {
      grey = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2];
    }
    const torch::Tensor mean = grey.mean();
    return ((x - mean) * c + mean).clamp_(0.0, 1.0);
  };
  return brightness_first ? adjust_contrast(adjust_brightness(image)) : adjust_brightness(adjust_contrast(image));
}

// ---------------------------------------------------------------- Gaussian blur

GaussianBlur::GaussianBlur(int64_t kernel_size, std::vector<double> sigma, double p)
    : kernel_size_(kernel_size), sigma_(std::move(sigma)), p_(p) {
  SSLAB_CHECK(kernel_size_ > 0 && kernel_size_ % 2 == 1, "gaussian_blur: kernel_size must be odd and > 0, got ",
              kernel_size_);
  SSLAB_CHECK(sigma_.size() == 2 && sigma_[0] > 0 && sigma_[0] <= sigma_[1],
              "gaussian_blur: sigma must be [lo, hi] with 0 < lo <= hi");
}

torch::Tensor GaussianBlur::apply(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "gaussian_blur");
  if (!coin(rng, p_)) return image;
  const double sigma = uniform(rng, sigma_[0], sigma_[1]);
  const int64_t C = image.size(0), k = kernel_size_, r = k / 2;
  torch::Tensor x = torch::arange(-r, r + 1, torch::kFloat32);
  torch::Tensor kernel = torch::exp(-(x * x) / (2.0 * sigma * sigma));
  kernel = (kernel / kernel.sum()).to(image.dtype());
  // Reflect padding needs the pad to be smaller than the side.
  const bool reflect = r < image.size(1) && r < image.size(2);
  auto pad = F::PadFuncOptions({r, r, r, r});
  if (reflect)
    pad.mode(torch::kReflect);
  else
    pad.mode(torch::kReplicate);
  torch::Tensor out = F::pad(image.unsqueeze(0), pad);
  out = F::conv2d(out, kernel.view({1, 1, k, 1}).expand({C, 1, k, 1}).contiguous(), F::Conv2dFuncOptions().groups(C));
  out = F::conv2d(out, kernel.view({1, 1, 1, k}).expand({C, 1, 1, k}).contiguous(), F::Conv2dFuncOptions().groups(C));
  return out.squeeze(0).clamp_(0.0, 1.0);
}

// ---------------------------------------------------------------- solarize

torch::Tensor Solarize::apply(const torch::Tensor& image, Rng& rng) const {
  check_image(image, "solarize");
  if (!coin(rng, p_)) return image;
  return torch::where(image >= threshold_, 1.0 - image, image);
}

// ---------------------------------------------------------------- normalize

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  SSLAB_CHECK(!mean_.empty() && mean_.size() == std_.size(), "normalize: mean and std must have the same length");
  for (double s : std_) SSLAB_CHECK(s > 0, "normalize: every std must be > 0");
}

torch::Tensor Normalize::apply(const torch::Tensor& image, Rng&) const {
  check_image(image, "normalize");
  const auto C = image.size(0), n = static_cast<int64_t>(mean_.size());
  SSLAB_CHECK(n == 1 || n == C, "normalize: mean/std have ", n, " values but the image has ", C, " channels");
  auto opts = image.options();
  torch::Tensor mean = torch::tensor(mean_, torch::kFloat64).to(opts).view({n, 1, 1});
  torch::Tensor std = torch::tensor(std_, torch::kFloat64).to(opts).view({n, 1, 1});
  return (image - mean) / std;
}

}  // namespace sslab::vision
