// The video encoder (a per-frame conv net feeding a ConvGRU), the frame
// decoder head, and the frame-prediction objective.
//
//   frame x_t [C,H,W] --conv net (stride 2^downsample)--> f_t [c, g, g]
//   ConvGRU: h_t = GRU(f_t, h_{t-1})            (spatial hidden state [hid, g, g])
//   readout r_t = [h_t ; f_t]  --decoder head--> x_{t+1} (predicted next frame)
//   clip embedding: mean over time and space of h_t  [hid]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::video {

struct VideoEncoderOptions {
  TORCH_ARG(int64_t, in_channels) = 1;  // 1 gray, 3 RGB
  TORCH_ARG(int64_t, channels) = 32;    // frame features c
  TORCH_ARG(int64_t, hidden) = 64;      // ConvGRU state
  TORCH_ARG(int64_t, downsample) = 2;   // stride-2 convolutions of the frame net (grid = H / 2^downsample)
  TORCH_ARG(int64_t, layers) = 1;       // stacked ConvGRU cells
  TORCH_ARG(int64_t, kernel) = 3;       // ConvGRU kernel
  // Clip embedding: "mean" of h over time and space, h of the "last" frame,
  // or "both": mean h next to the mean frame features f ([hid + c]).
  TORCH_ARG(std::string, pool) = "mean";
};

// A convolutional GRU cell (Ballas et al. 2016) with GroupNorm-free gates.
class ConvGruCellImpl : public torch::nn::Module {
 public:
  ConvGruCellImpl(int64_t in, int64_t hidden, int64_t kernel);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& h);

 private:
  torch::nn::Conv2d gates_{nullptr}, candidate_{nullptr};
  int64_t hidden_;
};
TORCH_MODULE(ConvGruCell);

class VideoEncoder : public Encoder {
 public:
  explicit VideoEncoder(VideoEncoderOptions options);

  // Frames [N,C,H,W] -> features [N,c,g,g].
  torch::Tensor encode_frames(const torch::Tensor& frames);
  // One ConvGRU step on features [B,c,g,g]; `state` (one [B,hid,g,g] per
  // layer) is empty at the first step.
  std::vector<torch::Tensor> step(const torch::Tensor& features, const std::vector<torch::Tensor>& state);
  // The decoder's input after a step: [B, hid + c, g, g].
  static torch::Tensor readout(const torch::Tensor& features, const std::vector<torch::Tensor>& state) {
    return torch::cat({state.back(), features}, 1);
  }
  // Hidden states of the last layer for every frame of a clip [B,T,C,H,W] -> [B,T,hid,g,g];
  // the frame features [B,T,c,g,g] too when `features` is given.
  torch::Tensor hidden_states(const torch::Tensor& clip, torch::Tensor* features = nullptr);

  torch::Tensor embed(const Batch& batch) override;
  int64_t embed_dim() const override {
    return options_.pool() == "both" ? options_.hidden() + options_.channels() : options_.hidden();
  }
  int64_t readout_dim() const { return options_.hidden() + options_.channels(); }
  const VideoEncoderOptions& options() const { return options_; }

 private:
  VideoEncoderOptions options_;
  torch::nn::Sequential frame_net_{nullptr};
  std::vector<ConvGruCell> cells_;
};

// The recipe keys of video.frame_decoder (the rest comes from its encoder).
struct FrameDecoderOptions {
  int64_t width = 64;             // channels of the first level
  std::string output = "linear";  // linear or sigmoid
};

// Upsamples a readout [B, in, g, g] back to a frame [B, C, g 2^up, g 2^up]:
// conv, then per level nearest x2 + conv (widths halving), then a 3x3 conv
// to C channels. logits() is the raw output; pixels() maps it to [0,1]: a
// sigmoid, or ("linear" output) a clamp, so that a pixel MSE on the raw
// output keeps its gradient where a saturated sigmoid would lose it.
class FrameDecoder : public Head {
 public:
  FrameDecoder(int64_t in, int64_t width, int64_t upsample, int64_t out_channels, bool sigmoid_output = false);
  torch::Tensor logits(const torch::Tensor& x);
  torch::Tensor pixels(const torch::Tensor& raw) const {
    return sigmoid_output_ ? torch::sigmoid(raw) : raw.clamp(0.0, 1.0);
  }
  torch::Tensor forward(const torch::Tensor& x) override { return pixels(logits(x)); }
  bool sigmoid_output() const { return sigmoid_output_; }

 private:
  torch::nn::Sequential net_{nullptr};
  bool sigmoid_output_;
};

struct FramePredictionOptions {
  TORCH_ARG(int64_t, context_frames) = 10;  // k
  TORCH_ARG(int64_t, predict_frames) = 10;  // n
  TORCH_ARG(std::string,
            loss) = "mse";  // pixel loss: mse (on the raw output of a linear decoder) or bce (sigmoid decoder)
  TORCH_ARG(std::string, target) = "pixels";  // pixels, or latent (features of an EMA copy of the frame net)
  // What the encoder reads while predicting frame k+j (j >= 1): its own
  // prediction of the previous frame (as at test time) or the true frame.
  TORCH_ARG(std::string, feedback) = "prediction";
};

struct Rollout {
  torch::Tensor logits;    // [B,n,C,H,W] raw decoder output for frames k..k+n-1 (decoder.pixels() maps it to [0,1])
  torch::Tensor readouts;  // [B,n,hid+c,g,g]
};

// Observes frames 0..k-1 and predicts frames k..k+n-1 of a clip [B,T,C,H,W].
// `detach_decoder_input`: the decoder sees detached readouts (latent target:
// the pixel decoder is trained on the side without shaping the encoder).
Rollout rollout(VideoEncoder& encoder, FrameDecoder& decoder, const torch::Tensor& clip, int64_t k, int64_t n,
                const std::string& feedback, bool detach_decoder_input = false);

// Squared error summed over each frame's pixels (values in [0,1]), averaged
// over frames and clips: [n] per predicted step, for pred and target [B,n,C,H,W].
torch::Tensor mse_per_frame(const torch::Tensor& pred, const torch::Tensor& target);

// The frame-prediction objective. Metrics: mse_per_frame (Moving MNIST
// convention) and copy_last_mse_per_frame (the copy-last-frame baseline on
// the same batch); latent_loss with target = latent.
class FramePrediction : public Objective, public Illustrator {
 public:
  FramePrediction(std::shared_ptr<VideoEncoder> encoder, std::shared_ptr<FrameDecoder> decoder,
                  FramePredictionOptions options, std::shared_ptr<VideoEncoder> target = nullptr);
  ObjectiveOutput compute(const Batch& batch) override;
  // "frames": for up to 4 clips of the batch, a row of the true frames
  // k..k+n-1 (at most 10) above a row of the predicted ones, and the last
  // context frame first in both rows.
  std::map<std::string, torch::Tensor> pictures(const Batch& batch) override;

 private:
  std::shared_ptr<VideoEncoder> encoder_;
  std::shared_ptr<FrameDecoder> decoder_;
  std::shared_ptr<VideoEncoder> target_;  // EMA copy (latent target)
  FramePredictionOptions options_;
  torch::nn::Conv2d latent_predictor_{nullptr};
};

}  // namespace sslab::video
