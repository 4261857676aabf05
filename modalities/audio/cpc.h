// Contrastive predictive coding (van den Oord et al. 2018): a strided 1-D
// convolution encoder turns the waveform into 10 ms latents z, an
// autoregressive context network (GRU or causal transformer) summarises them
// into contexts c, and per-step linear predictors W_k c_t are scored against
// the true future latent z_{t+k} and sampled negatives (InfoNCE).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sslab/components.h>

namespace sslab::audio {

struct CpcEncoderOptions {
  // Convolution stack (CPC paper: kernels 10,8,4,4,4, strides 5,4,2,2,2 =
  // total stride 160, 10 ms at 16 kHz). Paddings 3,2,1,1,1 make the output
  // exactly floor(S / 160) frames for S a multiple of 160.
  TORCH_ARG(std::vector<int64_t>, kernels) = std::vector<int64_t>{10, 8, 4, 4, 4};
  TORCH_ARG(std::vector<int64_t>, strides) = std::vector<int64_t>{5, 4, 2, 2, 2};
  TORCH_ARG(std::vector<int64_t>, paddings) = std::vector<int64_t>{3, 2, 1, 1, 1};
  TORCH_ARG(int64_t, channels) = 256;  // latent width C
  // wave: the strided convolutions read the waveform; logmel: the encoder
  // computes log-mel frames of the wave itself (hop = total stride) and
  // applies 1x1 convolutions.
  TORCH_ARG(std::string, features) = "wave";
  TORCH_ARG(int64_t, n_mels) = 40;
  TORCH_ARG(std::string, context) = "gru";  // gru or transformer (causal)
  TORCH_ARG(int64_t, context_dim) = 256;    // context width D
  TORCH_ARG(int64_t, context_layers) = 1;
  TORCH_ARG(int64_t, heads) = 4;             // transformer context only
  TORCH_ARG(bool, normalize_wave) = true;    // standardise each waveform over its real samples
  TORCH_ARG(std::string, pool) = "context";  // utterance embedding: mean of c, of z, or both (concatenated)
};

struct CpcFrames {
  torch::Tensor z;        // [B,T,C] latents
  torch::Tensor c;        // [B,T,D] contexts (c_t sees z_0..z_t)
  torch::Tensor lengths;  // [B] int64: real frames per sample
};

class CpcEncoder : public Encoder {
 public:
  explicit CpcEncoder(CpcEncoderOptions options);

  // Frames of a wave batch [B,S] with real lengths [B] (undefined: all real).
  CpcFrames frames(const torch::Tensor& x, const torch::Tensor& lengths = {});
  // Frames of the batch's input key, using "<input>.length" when present.
  CpcFrames frames(const Batch& batch);
  torch::Tensor embed(const Batch& batch) override;
  int64_t embed_dim() const override;

  // Latent frames produced from `input_length` samples (or log-mel frames).
  int64_t output_length(int64_t input_length) const;
  int64_t latent_dim() const { return options_.channels(); }
  int64_t context_dim() const { return options_.context_dim(); }
  const CpcEncoderOptions& options() const { return options_; }

 private:
  torch::Tensor context(const torch::Tensor& z);
  CpcEncoderOptions options_;
  std::shared_ptr<class LogMel> logmel_;
  std::vector<torch::nn::Conv1d> convs_;
  std::vector<torch::nn::LayerNorm> norms_;
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear context_in_{nullptr};
  torch::nn::TransformerEncoder transformer_{nullptr};
};

struct CpcOptions {
  TORCH_ARG(int64_t, prediction_steps) = 12;  // K
  TORCH_ARG(int64_t, negatives) = 16;         // per prediction
  // batch: any real frame of any utterance in the batch; utterance: other
  // frames of the same utterance; speaker: frames of utterances with the same
  // speaker label (the utterance itself included).
  TORCH_ARG(std::string, negatives_from) = "batch";
  TORCH_ARG(std::string, speaker_key) = "label.speaker";
};

// The CPC objective. Metrics: "accuracy" (mean over steps) and
// "accuracy_k<k>" for each step k: how often the true future latent scores
// above every negative; "loss_k<k>" likewise.
class Cpc : public Objective {
 public:
  Cpc(std::shared_ptr<CpcEncoder> encoder, CpcOptions options);
  ObjectiveOutput compute(const Batch& batch) override;
  // The loss on given frames (for tests and for compute()).
  ObjectiveOutput compute_frames(const CpcFrames& f, const torch::Tensor& speakers = {});
  torch::nn::Linear predictor(int64_t k) const { return predictors_.at(static_cast<size_t>(k - 1)); }

 private:
  std::shared_ptr<CpcEncoder> encoder_;
  CpcOptions options_;
  std::vector<torch::nn::Linear> predictors_;
};

}  // namespace sslab::audio
