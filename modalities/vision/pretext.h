// The classic image pretext tasks, on any image encoder (vision.cnn,
// vision.vit or a plugin's):
//   - rotation prediction (Gidaris et al. 2018, "Unsupervised Representation
//     Learning by Predicting Image Rotations"): classify which of 0, 90, 180
//     or 270 degrees an image was rotated by;
//   - inpainting (Pathak et al. 2016, "Context Encoders"): hide a square
//     region, reconstruct it from the rest with a decoder, L2 on the region;
//   - denoising (Vincent et al. 2008/2010, "Stacked Denoising Autoencoders"):
//     corrupt the image (masking, Gaussian or salt-and-pepper noise) and
//     reconstruct the clean image with a decoder, L2.
// The decoders work from the encoder's pooled embedding, as in the context
// encoder's channel-wise fully connected bottleneck.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <sslab/components.h>

namespace sslab::vision {

// ---- the pieces, free of sslab's registries so tests can use them alone

// images [B,C,H,W] (H == W), each rotated counter-clockwise by k[i] * 90
// degrees; k int64 [B] with values in 0..3.
torch::Tensor rotate_by(const torch::Tensor& images, const torch::Tensor& k);

// Embedding [B, in_dim] -> image [B, C, H, W]: a linear layer to a
// [width, H / 2^n, W / 2^n] map, then n stages of a 4x4 stride-2 transposed
// convolution, batch norm and ReLU (channels halved each stage, at least
// 16), then a 3x3 convolution to C channels. n is the largest of 3, 2, 1, 0
// for which 2^n divides H and W and leaves a map of side >= 3.
struct PixelDecoderOptions {
  TORCH_ARG(int64_t, in_dim) = 0;
  TORCH_ARG(int64_t, channels) = 1;  // C
  TORCH_ARG(int64_t, height) = 28;
  TORCH_ARG(int64_t, width) = 28;
  TORCH_ARG(int64_t, hidden) = 64;  // channels of the first map
};

class PixelDecoderImpl : public torch::nn::Module {
 public:
  explicit PixelDecoderImpl(const PixelDecoderOptions& options);
  torch::Tensor forward(const torch::Tensor& z);
  int64_t stages() const { return stages_; }

 private:
  PixelDecoderOptions options_;
  int64_t stages_ = 0, h0_ = 0, w0_ = 0;
  torch::nn::Linear fc_{nullptr};
  torch::nn::Sequential up_{nullptr};
  torch::nn::Conv2d out_{nullptr};
};
TORCH_MODULE(PixelDecoder);

// Squares hidden by inpainting: top-left corners [B] (rows, columns) of
// side `size` in images of side (height, width).
struct Regions {
  torch::Tensor top, left;  // int64 [B]
  int64_t size = 0;
};
// "center": every region centred; "random": uniform positions inside the image.
Regions inpainting_regions(int64_t batch, int64_t height, int64_t width, int64_t size, const std::string& where,
                           c10::optional<at::Generator> generator = c10::nullopt);
// mask [B,1,H,W] float32, 1 inside each sample's region.
torch::Tensor region_mask(const Regions& r, int64_t height, int64_t width, const torch::Device& device);
// The regions' pixels: [B, C, size, size].
torch::Tensor crop_regions(const torch::Tensor& images, const Regions& r);

// Denoising corruptions of images [B,C,H,W] in [0,1] (Vincent et al. 2010, 4.1):
//   "mask": each value set to 0 with probability `level` (masking noise);
//   "gaussian": x + N(0, level^2);
//   "salt_pepper": each value set to 0 or 1 (equally likely) with probability `level`.
// Returns the corrupted images and a float32 mask of the values changed
// (all ones for "gaussian").
std::pair<torch::Tensor, torch::Tensor> corrupt(const torch::Tensor& images, const std::string& kind, double level,
                                                c10::optional<at::Generator> generator = c10::nullopt);

// ---- the objectives

struct RotationOptions {
  // Every image in all four rotations, as in the paper (the batch the encoder
  // sees is 4x larger); false: one random rotation per image.
  TORCH_ARG(bool, all_rotations) = true;
  TORCH_ARG(int64_t, hidden) = 0;  // 0: a linear classifier; > 0: an MLP with this hidden width
};

class RotationPrediction : public Objective {
 public:
  RotationPrediction(std::shared_ptr<Encoder> encoder, const RotationOptions& options, std::string where = "");
  // loss: cross-entropy of the 4-way classifier on the rotated images;
  // metrics "accuracy" (share of rotations recognised) and "images".
  ObjectiveOutput compute(const Batch& batch) override;
  torch::Tensor logits(const torch::Tensor& rotated_images);

 private:
  std::shared_ptr<Encoder> encoder_;
  RotationOptions options_;
  std::string where_;
  torch::nn::Sequential classifier_{nullptr};
};

struct ReconstructionOptions {
  TORCH_ARG(int64_t, image_size) = 28;  // side of the (square) images the encoder is given
  TORCH_ARG(int64_t, channels) = 1;
  TORCH_ARG(int64_t, decoder_width) = 64;
  // inpainting
  TORCH_ARG(double, region) = 0.5;           // side of the hidden square / image side
  TORCH_ARG(std::string, where) = "random";  // center or random
  TORCH_ARG(double, fill) = 0.0;             // value put into the hidden region
  // denoising
  TORCH_ARG(std::string, corruption) = "mask";  // mask, gaussian or salt_pepper
  TORCH_ARG(double, level) = 0.3;               // probability (mask, salt_pepper) or noise std (gaussian)
};

// Shared by inpainting and denoising: the encoder, the decoder and the
// pictures of input, reconstruction and original.
class Reconstruction : public Objective, public Illustrator {
 public:
  Reconstruction(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, int64_t out_size,
                 std::string where);
  ObjectiveOutput compute(const Batch& batch) override;
  std::map<std::string, torch::Tensor> pictures(const Batch& batch) override;

  struct Output {
    torch::Tensor loss;   // scalar
    torch::Tensor input;  // what the encoder saw [B,C,H,W]
    torch::Tensor pred;   // the decoder's output: the region [B,C,s,s] or the image [B,C,H,W]
    torch::Tensor full;   // the reconstruction as an image [B,C,H,W] (inpainting: only in eval mode, for pictures)
  };
  virtual Output forward(const torch::Tensor& images, c10::optional<at::Generator> generator) = 0;

 protected:
  const torch::Tensor& images_of(const Batch& batch) const;
  torch::Tensor decode(const torch::Tensor& input);

  std::shared_ptr<Encoder> encoder_;
  ReconstructionOptions options_;
  std::string where_;
  PixelDecoder decoder_{nullptr};
};

class Inpainting : public Reconstruction {
 public:
  Inpainting(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, std::string where = "");
  // loss: mean over the hidden regions' values of (decoder output - original)^2
  // (Pathak et al.'s reconstruction loss, without the adversarial term).
  Output forward(const torch::Tensor& images, c10::optional<at::Generator> generator) override;
  int64_t region_size() const { return size_; }

 private:
  int64_t size_;
};

class Denoising : public Reconstruction {
 public:
  Denoising(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, std::string where = "");
  // loss: mean over every value of (decoder output - clean image)^2.
  Output forward(const torch::Tensor& images, c10::optional<at::Generator> generator) override;
};

}  // namespace sslab::vision
