// A small residual CNN encoder (ResNet basic blocks) for joint-embedding
// methods, which are usually run with a convolutional backbone: a 3x3 stem,
// stages of basic blocks (the first at full resolution, each next one
// halving it), global average pooling. Channels [32, 64, 128] on 28x28
// Fashion-MNIST: 28 -> 14 -> 7, a 128-d embedding. stem_pool adds a 2x2
// max pool after the stem (as ResNet's stem downsamples): the first stage
// runs at half resolution, about 4x cheaper, so a wider and deeper net fits
// the same step time (e.g. [32, 64, 128, 256]: 14 -> 7 -> 4 -> 2, 256-d).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::vision {

struct CnnOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{32, 64, 128};
  TORCH_ARG(int64_t, blocks) = 1;  // basic blocks per stage
  TORCH_ARG(bool, stem_pool) = false;  // 2x2 max pool after the stem
  TORCH_ARG(std::string, pool) = "mean";  // embedding: "mean" over the last map, or "grid" (2x2 cell means)
  // Run the convolutions, batch norms and pools on NHWC (channels-last)
  // tensors: the same numbers, but LibTorch's CPU batch norm and max pool are
  // several times faster on NHWC, and oneDNN/cuDNN convolutions prefer it.
  TORCH_ARG(bool, channels_last) = true;
  // (x - mean) / std per channel (one value: every channel) inside the
  // encoder, so the training views, the online probe, the evaluation and
  // any later user feed it the same raw [0, 1] images. Empty: no scaling.
  TORCH_ARG(std::vector<double>, input_mean) = std::vector<double>{};
  TORCH_ARG(std::vector<double>, input_std) = std::vector<double>{};
  // Bilinearly resize every input to input_size x input_size before the
  // stem (0: as given). Upsampling small images gives every stage a finer
  // grid (28 -> 36 px: a 3x3 final map instead of 2x2 with the pooled
  // stem), at about 1.65x the compute; the evaluation and any later user
  // feed the native images, and the encoder resizes them the same way.
  TORCH_ARG(int64_t, input_size) = 0;
};

class Cnn : public Encoder {
 public:
  explicit Cnn(const CnnOptions& options);
  // Pooled features of batch.at(input()): [B, channels.back()] (mean), or
  // [B, 4 * channels.back()] (grid: the means of a 2x2 grid of cells, which
  // keep where on the image a feature fired, as the ViT's pool = "grid").
  torch::Tensor embed(const Batch& batch) override;
  int64_t embed_dim() const override { return (options_.pool() == "grid" ? 4 : 1) * options_.channels().back(); }
  // images [B, C, H, W] -> feature map [B, channels.back(), H / 2^(stages-1) (/ 2 with stem_pool), ...]
  torch::Tensor features(const torch::Tensor& images);

 private:
  CnnOptions options_;
  torch::nn::Sequential stem_{nullptr}, stages_{nullptr};
  torch::Tensor input_mean_, input_std_;  // [1, C or 1, 1, 1], built once (not parameters: not in checkpoints)
};

}  // namespace sslab::vision
