#include "cnn.h"

namespace sslab::vision {

namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

// conv-bn-relu-conv-bn plus a (projected) shortcut, then relu (He et al. 2016).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1 = register_module("conv1", conv3x3(in, out, stride));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
    conv2 = register_module("conv2", conv3x3(out, out, 1));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      shortcut = register_module(
          "shortcut", torch::nn::Sequential(
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                          torch::nn::BatchNorm2d(out)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (shortcut ? shortcut->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential shortcut{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

Cnn::Cnn(const CnnOptions& options) : options_(options) {
  const auto& ch = options_.channels();
  SSLAB_CHECK(!ch.empty(), "vision.cnn: channels needs at least one stage");
  SSLAB_CHECK(options_.pool() == "mean" || options_.pool() == "grid", "vision.cnn: pool must be 'mean' or 'grid', got '",
              options_.pool(), "'");
  const auto& mean = options_.input_mean();
  const auto& sd = options_.input_std();
  SSLAB_CHECK(mean.size() == sd.size(), "vision.cnn: input_mean has ", mean.size(), " values but input_std has ",
              sd.size());
  SSLAB_CHECK(mean.empty() || mean.size() == 1 || static_cast<int64_t>(mean.size()) == options_.in_channels(),
              "vision.cnn: input_mean/input_std need one value or one per channel (", options_.in_channels(), "), got ",
              mean.size());
  for (double v : sd) SSLAB_CHECK(v > 0, "vision.cnn: every input_std must be > 0, got ", v);
  SSLAB_CHECK(options_.input_size() >= 0, "vision.cnn: input_size must be >= 0 (0: as given), got ",
              options_.input_size());
  if (!mean.empty()) {
    auto n = static_cast<int64_t>(mean.size());
    input_mean_ = torch::tensor(mean, torch::kFloat64).to(torch::kFloat32).view({1, n, 1, 1});
    input_std_ = torch::tensor(sd, torch::kFloat64).to(torch::kFloat32).view({1, n, 1, 1});
  }
  stem_ = register_module("stem", torch::nn::Sequential(conv3x3(options_.in_channels(), ch[0], 1),
                                                        torch::nn::BatchNorm2d(ch[0]), torch::nn::ReLU()));
  if (options_.stem_pool()) stem_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
  stages_ = torch::nn::Sequential();
  int64_t in = ch[0];
  for (size_t s = 0; s < ch.size(); ++s) {
    for (int64_t b = 0; b < options_.blocks(); ++b) {
      stages_->push_back(BasicBlock(in, ch[s], s > 0 && b == 0 ? 2 : 1));
      in = ch[s];
    }
  }
  register_module("stages", stages_);
  for (auto& m : modules(false)) {
    if (auto* conv = m->as<torch::nn::Conv2d>())
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  }
  // NHWC weights; moving the module to a device, loading a checkpoint into it
  // and the optimizer's zeros_like state all keep this layout.
  if (options_.channels_last()) {
    torch::NoGradGuard no_grad;
    for (auto& p : parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

torch::Tensor Cnn::features(const torch::Tensor& images) {
  SSLAB_CHECK(images.dim() == 4 && images.size(1) == options_.in_channels(), "vision.cnn: expected images [B, ",
              options_.in_channels(), ", H, W], got ", images.sizes());
  torch::Tensor x = images.to(torch::kFloat32);
  const int64_t size = options_.input_size();
  if (size > 0 && (x.size(2) != size || x.size(3) != size)) {
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{size, size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  if (input_mean_.defined()) x = (x - input_mean_.to(x.device())) / input_std_.to(x.device());
  if (options_.channels_last()) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  return stages_->forward(stem_->forward(x));
}

torch::Tensor Cnn::embed(const Batch& batch) {
  torch::Tensor map = features(batch.at(input()));
  if (options_.pool() == "grid") return torch::adaptive_avg_pool2d(map, {2, 2}).flatten(1);  // [B, C * 4]
  return map.mean({2, 3});
}

}  // namespace sslab::vision
