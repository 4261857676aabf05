// Image augmentations on one image [C,H,W] float32 in [0,1]. Every random
// choice is drawn from the Rng passed to apply(), so a seed fixes the output.
#pragma once

#include <cstdint>
#include <vector>

#include <sslab/components.h>

namespace sslab::vision {

// The recipe keys of the transforms below, with their defaults
// (vision.random_resized_crop, vision.horizontal_flip, ...).
struct RandomResizedCropOptions {
  int64_t size = 28;
  std::vector<double> scale = {0.08, 1.0};            // [lo, hi] share of the area
  std::vector<double> ratio = {3.0 / 4.0, 4.0 / 3.0};  // [lo, hi] aspect ratio w/h
};
struct HorizontalFlipOptions {
  double p = 0.5;
};
struct ColorJitterOptions {
  double brightness = 0.4, contrast = 0.4, p = 0.8;
};
struct GaussianBlurOptions {
  int64_t kernel_size = 3;
  std::vector<double> sigma = {0.1, 2.0};  // [lo, hi]
  double p = 0.5;
};
struct SolarizeOptions {
  double threshold = 0.5, p = 0.2;
};
struct NormalizeOptions {  // defaults: Fashion-MNIST
  std::vector<double> mean = {0.2860};
  std::vector<double> stdev = {0.3530};  // recipe key: std
};

// A crop of random area (share `scale` of the image) and aspect ratio
// (`ratio`, sampled log-uniformly), resized to size x size (bilinear); after
// 10 failed tries, a centre crop (torchvision's RandomResizedCrop).
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int64_t size, std::vector<double> scale, std::vector<double> ratio);
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  int64_t size_;
  std::vector<double> scale_, ratio_;
};

// Mirrors left-right with probability p.
class HorizontalFlip : public Transform {
 public:
  explicit HorizontalFlip(double p) : p_(p) {}
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  double p_;
};

// With probability p, scales brightness by U[1-b, 1+b] and contrast (around
// the mean grey level) by U[1-c, 1+c], in random order; clamps to [0,1].
class ColorJitter : public Transform {
 public:
  ColorJitter(double brightness, double contrast, double p) : brightness_(brightness), contrast_(contrast), p_(p) {}
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  double brightness_, contrast_, p_;
};

// With probability p, a Gaussian blur of sigma ~ U[sigma[0], sigma[1]] with
// an odd kernel_size, separable, reflect padding.
class GaussianBlur : public Transform {
 public:
  GaussianBlur(int64_t kernel_size, std::vector<double> sigma, double p);
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  int64_t kernel_size_;
  std::vector<double> sigma_;
  double p_;
};

// With probability p, inverts pixels >= threshold (x -> 1 - x).
class Solarize : public Transform {
 public:
  Solarize(double threshold, double p) : threshold_(threshold), p_(p) {}
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  double threshold_, p_;
};

// (x - mean[c]) / std[c]; mean and std hold one value per channel, or one
// value for all channels.
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  torch::Tensor apply(const torch::Tensor& image, Rng& rng) const override;

 private:
  std::vector<double> mean_, std_;
};

}  // namespace sslab::vision
