#include "cpc.h"

#include <cmath>
#include <limits>

#include <sslab/nn/pooling.h>

#include "transforms.h"

namespace sslab::audio {
namespace {

// [T,T] additive mask: -inf above the diagonal (t attends to <= t).
torch::Tensor causal_mask(int64_t t, const torch::Device& device) {
  return torch::full({t, t}, -std::numeric_limits<float>::infinity(), torch::TensorOptions().device(device)).triu(1);
}

torch::Tensor sinusoidal_positions(int64_t t, int64_t dim, const torch::Device& device) {
  torch::Tensor pos = torch::arange(t, torch::kFloat32).unsqueeze(1);
  torch::Tensor i = torch::arange(0, dim, 2, torch::kFloat32);
  torch::Tensor freq = torch::exp(-std::log(10000.0) * i / dim);
  torch::Tensor pe = torch::zeros({t, dim});
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                torch::sin(pos * freq));
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                torch::cos(pos * freq).narrow(1, 0, dim / 2));
  return pe.to(device);
}

}  // namespace

CpcEncoder::CpcEncoder(CpcEncoderOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  SSLAB_CHECK(o.kernels().size() == o.strides().size() && o.kernels().size() == o.paddings().size(),
              "audio.cpc_encoder: kernels, strides and paddings must have the same length");
  const bool wave = o.features() == "wave";
  const size_t layers = wave ? o.kernels().size() : 3;
  if (!wave) {
    LogMelOptions lm;
    lm.hop = 1;
    for (int64_t st : o.strides()) lm.hop *= st;
    lm.n_mels = o.n_mels();
    lm.n_fft = std::max<int64_t>(400, lm.hop * 2);
    logmel_ = std::make_shared<LogMel>(lm);
  }
  int64_t in = wave ? 1 : o.n_mels();
  for (size_t i = 0; i < layers; ++i) {
    auto opts =
        wave
            ? torch::nn::Conv1dOptions(in, o.channels(), o.kernels()[i]).stride(o.strides()[i]).padding(o.paddings()[i])
            : torch::nn::Conv1dOptions(in, o.channels(), 1);
    convs_.push_back(register_module("conv" + std::to_string(i), torch::nn::Conv1d(opts)));
    norms_.push_back(
        register_module("norm" + std::to_string(i), torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.channels()}))));
    in = o.channels();
  }
  if (o.context() == "gru") {
    gru_ = register_module(
        "gru",
        torch::nn::GRU(
            torch::nn::GRUOptions(o.channels(), o.context_dim()).num_layers(o.context_layers()).batch_first(true)));
  } else {
    SSLAB_CHECK(o.context_dim() % o.heads() == 0, "audio.cpc_encoder: heads (", o.heads(),
                ") must divide context_dim (", o.context_dim(), ")");
    context_in_ = register_module("context_in", torch::nn::Linear(o.channels(), o.context_dim()));
    auto layer =
        torch::nn::TransformerEncoderLayer(torch::nn::TransformerEncoderLayerOptions(o.context_dim(), o.heads())
                                               .dim_feedforward(2 * o.context_dim())
                                               .dropout(0.0));
    transformer_ = register_module(
        "transformer", torch::nn::TransformerEncoder(torch::nn::TransformerEncoderOptions(layer, o.context_layers())));
  }
}

int64_t CpcEncoder::output_length(int64_t n) const {
  if (options_.features() != "wave") return n <= 0 ? 0 : 1 + n / logmel_->options().hop;
  for (size_t i = 0; i < options_.kernels().size(); ++i) {
    const int64_t k = options_.kernels()[i], s = options_.strides()[i], p = options_.paddings()[i];
    if (n + 2 * p < k) return 0;
    n = (n + 2 * p - k) / s + 1;
  }
  return n;
}

int64_t CpcEncoder::embed_dim() const {
  if (options_.pool() == "latent") return options_.channels();
  if (options_.pool() == "both") return options_.channels() + options_.context_dim();
  return options_.context_dim();
}

torch::Tensor CpcEncoder::context(const torch::Tensor& z) {
  if (gru_) return std::get<0>(gru_->forward(z));
  const int64_t t = z.size(1);
  torch::Tensor h = context_in_(z) + sinusoidal_positions(t, options_.context_dim(), z.device()).unsqueeze(0);
  // LibTorch 1.13's TransformerEncoder is sequence-first.
  h = transformer_->forward(h.transpose(0, 1), causal_mask(t, z.device()));
  return h.transpose(0, 1);
}

CpcFrames CpcEncoder::frames(const torch::Tensor& input, const torch::Tensor& lengths) {
  const bool wave = options_.features() == "wave";
  SSLAB_CHECK(input.dim() == 2, "audio.cpc_encoder: expected a wave batch [B,S], got ", input.sizes());
  const int64_t b = input.size(0), s = input.size(1);
  torch::Tensor len = lengths.defined() ? lengths.to(torch::kCPU, torch::kInt64) : torch::full({b}, s, torch::kInt64);
  torch::Tensor x = input.to(torch::kFloat32);
  torch::Tensor real = torch::arange(s, torch::TensorOptions().device(x.device())).unsqueeze(0) <
                       len.to(x.device()).unsqueeze(1);  // [B,S]
  if (options_.normalize_wave()) {
    torch::Tensor m = real.to(torch::kFloat32);
    torch::Tensor count = m.sum(1, true).clamp_min(1.0);
    torch::Tensor mean = (x * m).sum(1, true) / count;
    torch::Tensor var = ((x - mean).pow(2) * m).sum(1, true) / count;
    x = (x - mean) / torch::sqrt(var + 1e-8);
  }
  x = x * real.to(x.scalar_type());  // zero past each length
  torch::Tensor layer_len = len.clone();
  if (wave) {
    x = x.unsqueeze(1);  // [B,1,S]
  } else {
    x = logmel_->features(x).transpose(1, 2);  // [B,M,T]
    layer_len = torch::where(len > 0, 1 + torch::div(len, logmel_->options().hop, "floor"), torch::zeros_like(len))
                    .clamp_max(x.size(2));
  }
  // Frames past a sample's real length are zeroed after every layer, so a
  // padded clip gives exactly the frames of the clip alone.
  for (size_t i = 0; i < convs_.size(); ++i) {
    x = convs_[i](x);
    x = torch::relu(norms_[i](x.transpose(1, 2))).transpose(1, 2);
    if (wave) {
      const int64_t k = options_.kernels()[i], st = options_.strides()[i], p = options_.paddings()[i];
      layer_len = torch::where(layer_len + 2 * p < k, torch::zeros_like(layer_len),
                               torch::div(layer_len + 2 * p - k, st, "floor") + 1);
    }
    torch::Tensor keep = torch::arange(x.size(2), torch::TensorOptions().device(x.device())).unsqueeze(0) <
                         layer_len.to(x.device()).unsqueeze(1);
    x = x * keep.unsqueeze(1).to(x.scalar_type());
  }
  CpcFrames f;
  f.z = x.transpose(1, 2).contiguous();  // [B,T,C]
  const int64_t t = f.z.size(1);
  std::vector<int64_t> fl(static_cast<size_t>(b));
  auto acc = len.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b; ++i) fl[static_cast<size_t>(i)] = std::min(t, output_length(acc[i]));
  f.lengths = torch::tensor(fl, torch::kInt64);
  f.c = context(f.z);
  return f;
}

CpcFrames CpcEncoder::frames(const Batch& batch) {
  const std::string& key = input();
  torch::Tensor len = batch.has(key + ".length") ? batch.at(key + ".length") : torch::Tensor();
  return frames(batch.at(key), len);
}

torch::Tensor CpcEncoder::embed(const Batch& batch) {
  CpcFrames f = frames(batch);
  const int64_t t = f.z.size(1);
  torch::Tensor pad = torch::arange(t, torch::kInt64).unsqueeze(0) >= f.lengths.unsqueeze(1);
  pad = pad.to(f.z.device());
  if (options_.pool() == "latent") return nn::mean_pool(f.z, pad);
  if (options_.pool() == "both") return torch::cat({nn::mean_pool(f.z, pad), nn::mean_pool(f.c, pad)}, 1);
  return nn::mean_pool(f.c, pad);
}

Cpc::Cpc(std::shared_ptr<CpcEncoder> encoder, CpcOptions options)
    : encoder_(std::move(encoder)), options_(std::move(options)) {
  for (int64_t k = 1; k <= options_.prediction_steps(); ++k)
    predictors_.push_back(register_module("predictor" + std::to_string(k),
                                          torch::nn::Linear(encoder_->context_dim(), encoder_->latent_dim())));
}

ObjectiveOutput Cpc::compute(const Batch& batch) {
  CpcFrames f = encoder_->frames(batch);
  torch::Tensor speakers;
  if (options_.negatives_from() == "speaker") {
    SSLAB_CHECK(batch.has(options_.speaker_key()), "audio.cpc: negatives_from = \"speaker\" needs the batch key '",
                options_.speaker_key(), "' (set speaker_key)");
    speakers = batch.at(options_.speaker_key());
  }
  return compute_frames(f, speakers);
}

ObjectiveOutput Cpc::compute_frames(const CpcFrames& f, const torch::Tensor& speakers) {
  const auto dev = f.z.device();
  const int64_t b = f.z.size(0), t = f.z.size(1), c = f.z.size(2), n = options_.negatives();
  const std::string& from = options_.negatives_from();
  torch::Tensor len = f.lengths.to(dev);
  torch::Tensor real = torch::arange(t, torch::TensorOptions().device(dev)).unsqueeze(0) < len.unsqueeze(1);
  torch::Tensor zf = f.z.reshape({b * t, c});
  torch::Tensor real_rows = real.flatten().nonzero().squeeze(1);  // flat indices of real frames
  SSLAB_CHECK(real_rows.numel() >= 2, "audio.cpc: the batch has fewer than 2 real frames (clips too short?)");
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(dev);

  ObjectiveOutput out;
  std::vector<torch::Tensor> losses;
  double acc_sum = 0;
  int64_t steps = 0;
  for (int64_t k = 1; k <= options_.prediction_steps(); ++k) {
    const int64_t tk = t - k;
    if (tk <= 0) break;
    torch::Tensor valid = real.slice(1, k, t);  // the target z_{t+k} is real (so is c_t)
    if (!valid.any().item<bool>()) break;
    torch::Tensor pred = predictors_[static_cast<size_t>(k - 1)](f.c.slice(1, 0, tk));  // [B,tk,C]
    torch::Tensor pos = f.z.slice(1, k, t);
    torch::Tensor pos_rows =
        (torch::arange(b, i64).unsqueeze(1) * t + torch::arange(k, t, i64).unsqueeze(0));  // [B,tk]
    torch::Tensor idx;  // [B,tk,N] flat rows of negatives
    if (from == "batch") {
      idx = real_rows.index_select(0, torch::randint(real_rows.numel(), {b * tk * n}, i64)).view({b, tk, n});
    } else if (from == "utterance") {
      // Another real frame of the same utterance: draw among len-1 frames and
      // step over the positive.
      torch::Tensor span = (len - 1).clamp_min(1).to(torch::kFloat32).view({b, 1, 1});
      torch::Tensor r = (torch::rand({b, tk, n}, torch::TensorOptions().device(dev)) * span).floor().to(torch::kInt64);
      torch::Tensor target_t = torch::arange(k, t, i64).view({1, tk, 1});
      r = r + (r >= target_t).to(torch::kInt64);
      r = torch::min(r, (len - 1).clamp_min(0).view({b, 1, 1}));
      idx = torch::arange(b, i64).view({b, 1, 1}) * t + r;
    } else {
      SSLAB_CHECK(speakers.defined(), "audio.cpc: speaker negatives need speaker labels");
      torch::Tensor spk = speakers.to(dev).view({b});
      torch::Tensor same = (spk.unsqueeze(0) == spk.unsqueeze(1)).to(torch::kFloat32) *
                           (len > 0).to(torch::kFloat32).unsqueeze(0);  // [B,B]
      same = same + (same.sum(1, true) == 0).to(torch::kFloat32) * torch::eye(b, torch::TensorOptions().device(dev));
      torch::Tensor utt = torch::multinomial(same, tk * n, /*replacement=*/true).view({b, tk, n});
      torch::Tensor ulen = len.index_select(0, utt.flatten()).view({b, tk, n}).to(torch::kFloat32);
      torch::Tensor r = (torch::rand({b, tk, n}, torch::TensorOptions().device(dev)) * ulen).floor().to(torch::kInt64);
      idx = utt * t + r;
    }
    torch::Tensor neg = zf.index_select(0, idx.flatten()).view({b, tk, n, c});
    torch::Tensor pos_logit = (pred * pos).sum(-1, true);                          // [B,tk,1]
    torch::Tensor neg_logit = torch::matmul(neg, pred.unsqueeze(-1)).squeeze(-1);  // [B,tk,N]
    // A negative that is the positive itself is no negative.
    neg_logit = neg_logit.masked_fill(idx == pos_rows.unsqueeze(-1), -std::numeric_limits<float>::infinity());
    torch::Tensor logits = torch::cat({pos_logit, neg_logit}, -1);
    torch::Tensor nll = torch::logsumexp(logits, -1) - pos_logit.squeeze(-1);  // [B,tk]
    torch::Tensor loss_k = nll.masked_select(valid).mean();
    losses.push_back(loss_k);
    torch::NoGradGuard no_grad;
    double acc = (pos_logit.squeeze(-1) > std::get<0>(neg_logit.max(-1)))
                     .masked_select(valid)
                     .to(torch::kFloat64)
                     .mean()
                     .item<double>();
    out.metrics["accuracy_k" + std::to_string(k)] = acc;
    out.metrics["loss_k" + std::to_string(k)] = loss_k.item<double>();
    acc_sum += acc;
    ++steps;
  }
  SSLAB_CHECK(steps > 0, "audio.cpc: clips of ", t, " frames are too short to predict ", 1, " step ahead");
  out.loss = torch::stack(losses).mean();
  out.metrics["accuracy"] = acc_sum / steps;
  return out;
}

}  // namespace sslab::audio
