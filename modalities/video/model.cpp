#include "model.h"

#include <sslab/images.h>

namespace sslab::video {
namespace {

namespace F = torch::nn::functional;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

int64_t groups_for(int64_t channels) {
  for (int64_t g : {8, 4, 2})
    if (channels % g == 0) return g;
  return 1;
}

}  // namespace

ConvGruCellImpl::ConvGruCellImpl(int64_t in, int64_t hidden, int64_t kernel) : hidden_(hidden) {
  gates_ = register_module("gates", conv(in + hidden, 2 * hidden, kernel));
  candidate_ = register_module("candidate", conv(in + hidden, hidden, kernel));
}

torch::Tensor ConvGruCellImpl::forward(const torch::Tensor& x, const torch::Tensor& h) {
  auto zr = torch::sigmoid(gates_(torch::cat({x, h}, 1))).chunk(2, 1);
  torch::Tensor z = zr[0], r = zr[1];
  torch::Tensor cand = torch::tanh(candidate_(torch::cat({x, r * h}, 1)));
  return (1 - z) * h + z * cand;
}

VideoEncoder::VideoEncoder(VideoEncoderOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  SSLAB_CHECK(o.downsample() >= 1, "video.encoder: downsample must be >= 1");
  frame_net_ = torch::nn::Sequential();
  int64_t in = o.in_channels();
  for (int64_t i = 0; i < o.downsample(); ++i) {
    // Widths grow to `channels` at the last level.
    const int64_t out = std::max<int64_t>(8, o.channels() >> (o.downsample() - 1 - i));
    frame_net_->push_back(conv(in, out, 3, 2));
    frame_net_->push_back(torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups_for(out), out)));
    frame_net_->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
    in = out;
  }
  frame_net_->push_back(conv(in, o.channels(), 3));
  frame_net_->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  register_module("frame_net", frame_net_);
  for (int64_t l = 0; l < o.layers(); ++l)
    cells_.push_back(register_module("gru" + std::to_string(l),
                                     ConvGruCell(l == 0 ? o.channels() : o.hidden(), o.hidden(), o.kernel())));
  set_input("video.frames");
}

torch::Tensor VideoEncoder::encode_frames(const torch::Tensor& frames) { return frame_net_->forward(frames); }

std::vector<torch::Tensor> VideoEncoder::step(const torch::Tensor& features, const std::vector<torch::Tensor>& state) {
  std::vector<torch::Tensor> next;
  torch::Tensor x = features;
  for (size_t l = 0; l < cells_.size(); ++l) {
    torch::Tensor h =
        state.empty() ? torch::zeros({x.size(0), options_.hidden(), x.size(2), x.size(3)}, x.options()) : state[l];
    x = cells_[l]->forward(x, h);
    next.push_back(x);
  }
  return next;
}

torch::Tensor VideoEncoder::hidden_states(const torch::Tensor& clip, torch::Tensor* features) {
  SSLAB_CHECK(clip.dim() == 5 && clip.size(2) == options_.in_channels(), "video.encoder: expected frames [B,T,",
              options_.in_channels(), ",H,W], got ", clip.sizes());
  const int64_t b = clip.size(0), t = clip.size(1);
  torch::Tensor f = encode_frames(clip.flatten(0, 1));
  f = f.view({b, t, f.size(1), f.size(2), f.size(3)});
  std::vector<torch::Tensor> state, hs;
  for (int64_t i = 0; i < t; ++i) {
    state = step(f.select(1, i), state);
    hs.push_back(state.back());
  }
  if (features) *features = f;
  return torch::stack(hs, 1);
}

torch::Tensor VideoEncoder::embed(const Batch& batch) {
  torch::Tensor f;
  torch::Tensor h = hidden_states(batch.at(input()), &f);  // [B,T,hid,g,g]
  if (options_.pool() == "last") return h.select(1, h.size(1) - 1).mean({2, 3});
  if (options_.pool() == "both") return torch::cat({h.mean({1, 3, 4}), f.mean({1, 3, 4})}, 1);
  return h.mean({1, 3, 4});
}

FrameDecoder::FrameDecoder(int64_t in, int64_t width, int64_t upsample, int64_t out_channels, bool sigmoid_output)
    : sigmoid_output_(sigmoid_output) {
  net_ = torch::nn::Sequential();
  net_->push_back(conv(in, width, 3));
  net_->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
  int64_t w = width;
  for (int64_t i = 0; i < upsample; ++i) {
    const int64_t out = std::max<int64_t>(8, w / 2);
    net_->push_back(torch::nn::Upsample(
        torch::nn::UpsampleOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
    net_->push_back(conv(w, out, 3));
    net_->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)));
    w = out;
  }
  net_->push_back(conv(w, out_channels, 3));
  register_module("net", net_);
}

torch::Tensor FrameDecoder::logits(const torch::Tensor& x) { return net_->forward(x); }

Rollout rollout(VideoEncoder& encoder, FrameDecoder& decoder, const torch::Tensor& clip, int64_t k, int64_t n,
                const std::string& feedback, bool detach_decoder_input) {
  SSLAB_CHECK(clip.dim() == 5, "video.frame_prediction: expected frames [B,T,C,H,W], got ", clip.sizes());
  SSLAB_CHECK(k >= 1 && n >= 1 && k + n <= clip.size(1), "video.frame_prediction: context_frames (", k,
              ") + predict_frames (", n, ") must be at most the clip's ", clip.size(1), " frames");
  const int64_t b = clip.size(0);
  torch::Tensor f = encoder.encode_frames(clip.slice(1, 0, k).flatten(0, 1));
  f = f.view({b, k, f.size(1), f.size(2), f.size(3)});
  std::vector<torch::Tensor> state;
  for (int64_t i = 0; i < k; ++i) state = encoder.step(f.select(1, i), state);
  torch::Tensor cur = f.select(1, k - 1);
  std::vector<torch::Tensor> logits, readouts;
  for (int64_t j = 0; j < n; ++j) {
    if (j > 0) {
      torch::Tensor input = feedback == "prediction" ? decoder.pixels(logits.back()) : clip.select(1, k + j - 1);
      cur = encoder.encode_frames(input);
      state = encoder.step(cur, state);
    }
    torch::Tensor r = VideoEncoder::readout(cur, state);
    readouts.push_back(r);
    logits.push_back(decoder.logits(detach_decoder_input ? r.detach() : r));
  }
  return Rollout{torch::stack(logits, 1), torch::stack(readouts, 1)};
}

torch::Tensor mse_per_frame(const torch::Tensor& pred, const torch::Tensor& target) {
  return (pred - target).pow(2).sum({2, 3, 4}).mean(0);
}

FramePrediction::FramePrediction(std::shared_ptr<VideoEncoder> encoder, std::shared_ptr<FrameDecoder> decoder,
                                 FramePredictionOptions options, std::shared_ptr<VideoEncoder> target)
    : encoder_(std::move(encoder)),
      decoder_(std::move(decoder)),
      target_(std::move(target)),
      options_(std::move(options)) {
  SSLAB_CHECK(options_.loss() != "bce" || decoder_->sigmoid_output(),
              "video.frame_prediction: loss = \"bce\" needs a decoder with output = \"sigmoid\"");
  if (options_.target() == "latent") {
    SSLAB_CHECK(target_, "video.frame_prediction: the latent target needs an EMA copy of the encoder");
    latent_predictor_ =
        register_module("latent_predictor", conv(encoder_->readout_dim(), encoder_->options().channels(), 1));
  }
}

ObjectiveOutput FramePrediction::compute(const Batch& batch) {
  const torch::Tensor& clip = batch.at(encoder_->input());
  const int64_t k = options_.context_frames(), n = options_.predict_frames();
  const bool latent = options_.target() == "latent";
  Rollout r = rollout(*encoder_, *decoder_, clip, k, n, options_.feedback(), latent);
  torch::Tensor truth = clip.slice(1, k, k + n);
  // MSE on the raw output of a linear decoder (on the sigmoid of a sigmoid one).
  torch::Tensor pixel_loss = options_.loss() == "bce"
                                 ? F::binary_cross_entropy_with_logits(r.logits, truth)
                                 : F::mse_loss(decoder_->sigmoid_output() ? torch::sigmoid(r.logits) : r.logits, truth);
  ObjectiveOutput out;
  out.loss = pixel_loss;
  if (latent) {
    torch::Tensor target_features;
    {
      torch::NoGradGuard no_grad;
      target_features = target_->encode_frames(truth.flatten(0, 1));
      target_features = target_features.view(
          {clip.size(0), n, target_features.size(1), target_features.size(2), target_features.size(3)});
    }
    torch::Tensor pred = latent_predictor_(r.readouts.flatten(0, 1)).view(target_features.sizes());
    // Normalised per position over channels, so scale cannot shrink the loss.
    auto norm = [](const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().dim(2)); };
    torch::Tensor latent_loss = (norm(pred) - norm(target_features)).pow(2).sum(2).mean();
    out.loss = latent_loss + pixel_loss;  // the decoder reads detached readouts: pixel loss trains only it
    out.metrics["latent_loss"] = latent_loss.item<double>();
  }
  torch::NoGradGuard no_grad;
  out.metrics["pixel_loss"] = pixel_loss.item<double>();
  out.metrics["mse_per_frame"] = mse_per_frame(decoder_->pixels(r.logits), truth).mean().item<double>();
  torch::Tensor last = clip.select(1, k - 1).unsqueeze(1).expand_as(truth);
  out.metrics["copy_last_mse_per_frame"] = mse_per_frame(last, truth).mean().item<double>();
  return out;
}

std::map<std::string, torch::Tensor> FramePrediction::pictures(const Batch& batch) {
  torch::Tensor clip = batch.at(encoder_->input());
  clip = clip.narrow(0, 0, std::min<int64_t>(4, clip.size(0)));
  const int64_t k = options_.context_frames(), n = options_.predict_frames(), shown = std::min<int64_t>(n, 10);
  Rollout r = rollout(*encoder_, *decoder_, clip, k, n, options_.feedback(), false);
  torch::Tensor pred = decoder_->pixels(r.logits).narrow(1, 0, shown);  // [B, shown, C, H, W]
  torch::Tensor truth = clip.slice(1, k, k + shown).to(torch::kFloat32);
  torch::Tensor last = clip.select(1, k - 1).unsqueeze(1).to(torch::kFloat32);
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < clip.size(0); ++i) {
    rows.push_back(torch::cat({last[i], truth[i]}, 0));
    rows.push_back(torch::cat({last[i], pred[i]}, 0));
  }
  torch::Tensor frames = torch::cat(rows, 0).clamp(0, 1);  // [rows * (1 + shown), C, H, W]
  return {{"frames", image_grid(frames, 1 + shown)}};
}

}  // namespace sslab::video
