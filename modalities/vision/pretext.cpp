#include "pretext.h"

#include <algorithm>
#include <cmath>

#include <sslab/images.h>

#include <ATen/CPUGeneratorImpl.h>

namespace sslab::vision {

namespace {

// The encoder's embedding of images given under its input key.
torch::Tensor embed_images(Encoder& encoder, const torch::Tensor& images) {
  Batch b;
  b.tensors[encoder.input()] = images;
  b.size = images.size(0);
  return encoder.embed(b);
}

// Uniform [0, 1) (or standard normal) values shaped like `like`, on its
// device; drawn from `generator` on the generator's own device when one is
// given (the pictures' CPU generator while the model runs on a GPU).
torch::Tensor random_like(const torch::Tensor& like, const c10::optional<at::Generator>& generator,
                          bool normal = false) {
  auto opts = generator ? like.options().device(generator->device()) : like.options();
  return (normal ? torch::randn(like.sizes(), generator, opts) : torch::rand(like.sizes(), generator, opts))
      .to(like.device());
}

// Side of the inpainting square: region x image_size, rounded, in [1, image_size].
int64_t region_side(const ReconstructionOptions& o) {
  return std::clamp<int64_t>(std::llround(o.region() * static_cast<double>(o.image_size())), 1, o.image_size());
}

}  // namespace

// ---------------------------------------------------------------- pieces

torch::Tensor rotate_by(const torch::Tensor& images, const torch::Tensor& k) {
  SSLAB_CHECK(images.dim() == 4 && images.size(2) == images.size(3),
              "rotation: images must be [B,C,H,W] with H == W, got ", images.sizes());
  SSLAB_CHECK(k.dim() == 1 && k.size(0) == images.size(0), "rotation: k must be [B] for images ", images.sizes(),
              ", got ", k.sizes());
  torch::Tensor kk = k.to(images.device(), torch::kInt64);
  torch::Tensor out = torch::empty_like(images);
  for (int64_t r = 0; r < 4; ++r) {
    torch::Tensor idx = kk.eq(r).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    out.index_copy_(0, idx, torch::rot90(images.index_select(0, idx), r, {2, 3}));
  }
  return out;
}

PixelDecoderImpl::PixelDecoderImpl(const PixelDecoderOptions& options) : options_(options) {
  const int64_t h = options.height(), w = options.width();
  SSLAB_CHECK(options.in_dim() > 0 && options.channels() > 0 && h > 0 && w > 0 && options.hidden() > 0,
              "pixel decoder: in_dim, channels, height, width and hidden must be > 0");
  for (int64_t n = 3; n >= 0; --n) {
    const int64_t f = int64_t{1} << n;
    if (h % f == 0 && w % f == 0 && h / f >= 3 && w / f >= 3) {
      stages_ = n;
      break;
    }
  }
  h0_ = h >> stages_;
  w0_ = w >> stages_;
  fc_ = register_module("fc", torch::nn::Linear(options.in_dim(), options.hidden() * h0_ * w0_));
  up_ = torch::nn::Sequential();
  int64_t c = options.hidden();
  for (int64_t i = 0; i < stages_; ++i) {
    const int64_t next = std::max<int64_t>(16, c / 2);
    up_->push_back(
        torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(c, next, 4).stride(2).padding(1).bias(false)));
    up_->push_back(torch::nn::BatchNorm2d(next));
    up_->push_back(torch::nn::ReLU());
    c = next;
  }
  register_module("up", up_);
  out_ = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, options.channels(), 3).padding(1)));
}

torch::Tensor PixelDecoderImpl::forward(const torch::Tensor& z) {
  torch::Tensor x = torch::relu(fc_->forward(z)).view({z.size(0), options_.hidden(), h0_, w0_});
  if (stages_ > 0) x = up_->forward(x);
  return out_->forward(x);
}

Regions inpainting_regions(int64_t batch, int64_t height, int64_t width, int64_t size, const std::string& where,
                           c10::optional<at::Generator> generator) {
  SSLAB_CHECK(size >= 1 && size <= height && size <= width, "inpainting: a region of side ", size,
              " does not fit images of ", height, "x", width);
  Regions r;
  r.size = size;
  if (where == "center") {
    r.top = torch::full({batch}, (height - size) / 2, torch::kInt64);
    r.left = torch::full({batch}, (width - size) / 2, torch::kInt64);
  } else if (where == "random") {
    r.top = torch::randint(0, height - size + 1, {batch}, generator, torch::kInt64);
    r.left = torch::randint(0, width - size + 1, {batch}, generator, torch::kInt64);
  } else {
    throw UserError(str("inpainting: where must be center or random, got '", where, "'"));
  }
  return r;
}

torch::Tensor region_mask(const Regions& r, int64_t height, int64_t width, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor top = r.top.to(device).unsqueeze(1), left = r.left.to(device).unsqueeze(1);
  torch::Tensor rows = torch::arange(height, opts).unsqueeze(0), cols = torch::arange(width, opts).unsqueeze(0);
  torch::Tensor in_rows = rows.ge(top).logical_and(rows.lt(top + r.size));    // [B,H]
  torch::Tensor in_cols = cols.ge(left).logical_and(cols.lt(left + r.size));  // [B,W]
  return in_rows.unsqueeze(2).logical_and(in_cols.unsqueeze(1)).unsqueeze(1).to(torch::kFloat32);
}

torch::Tensor crop_regions(const torch::Tensor& images, const Regions& r) {
  const int64_t b = images.size(0), c = images.size(1), w = images.size(3), s = r.size;
  torch::Tensor offsets = torch::arange(s, torch::TensorOptions().dtype(torch::kInt64).device(images.device()));
  torch::Tensor rows = r.top.to(images.device()).unsqueeze(1) + offsets;                // [B,s]
  torch::Tensor cols = r.left.to(images.device()).unsqueeze(1) + offsets;               // [B,s]
  torch::Tensor band = images.gather(2, rows.view({b, 1, s, 1}).expand({b, c, s, w}));  // [B,C,s,W]
  return band.gather(3, cols.view({b, 1, 1, s}).expand({b, c, s, s}));
}

std::pair<torch::Tensor, torch::Tensor> corrupt(const torch::Tensor& images, const std::string& kind, double level,
                                                c10::optional<at::Generator> generator) {
  if (kind == "mask") {
    torch::Tensor hit = random_like(images, generator).lt(level);
    return {images.masked_fill(hit, 0.0), hit.to(torch::kFloat32)};
  }
  if (kind == "gaussian") {
    return {images + level * random_like(images, generator, /*normal=*/true),
            torch::ones(images.sizes(), images.options().dtype(torch::kFloat32))};
  }
  if (kind == "salt_pepper") {
    torch::Tensor hit = random_like(images, generator).lt(level);
    torch::Tensor salt = random_like(images, generator).lt(0.5).to(images.scalar_type());
    return {torch::where(hit, salt, images), hit.to(torch::kFloat32)};
  }
  throw UserError(str("denoising: corruption must be mask, gaussian or salt_pepper, got '", kind, "'"));
}

// ---------------------------------------------------------------- rotation

RotationPrediction::RotationPrediction(std::shared_ptr<Encoder> encoder, const RotationOptions& options,
                                       std::string where)
    : encoder_(std::move(encoder)), options_(options), where_(std::move(where)) {
  const int64_t d = encoder_->embed_dim();
  classifier_ = torch::nn::Sequential();
  if (options.hidden() > 0) {
    classifier_->push_back(torch::nn::Linear(d, options.hidden()));
    classifier_->push_back(torch::nn::BatchNorm1d(options.hidden()));
    classifier_->push_back(torch::nn::ReLU());
    classifier_->push_back(torch::nn::Linear(options.hidden(), 4));
  } else {
    classifier_->push_back(torch::nn::Linear(d, 4));
  }
  register_module("classifier", classifier_);
}

torch::Tensor RotationPrediction::logits(const torch::Tensor& rotated_images) {
  return classifier_->forward(embed_images(*encoder_, rotated_images));
}

ObjectiveOutput RotationPrediction::compute(const Batch& batch) {
  const torch::Tensor& x = batch.at(encoder_->input());
  SSLAB_CHECK(x.dim() == 4 && x.size(2) == x.size(3), where_,
              ": rotation prediction needs square images [B,C,H,W] in '", encoder_->input(), "', got ", x.sizes());
  const int64_t b = x.size(0);
  torch::Tensor rotated, labels;
  auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  if (options_.all_rotations()) {
    rotated = torch::cat({x, torch::rot90(x, 1, {2, 3}), torch::rot90(x, 2, {2, 3}), torch::rot90(x, 3, {2, 3})});
    labels = torch::arange(4, long_opts).repeat_interleave(b);
  } else {
    labels = torch::randint(0, 4, {b}, long_opts);
    rotated = rotate_by(x, labels);
  }
  torch::Tensor out = logits(rotated);
  ObjectiveOutput o;
  o.loss = torch::nn::functional::cross_entropy(out, labels);
  torch::NoGradGuard no_grad;
  o.metrics["accuracy"] = out.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
  o.metrics["images"] = static_cast<double>(rotated.size(0));
  return o;
}

// ---------------------------------------------------------------- reconstruction

Reconstruction::Reconstruction(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, int64_t out_size,
                               std::string where)
    : encoder_(std::move(encoder)), options_(options), where_(std::move(where)) {
  decoder_ = register_module("decoder", PixelDecoder(PixelDecoderOptions()
                                                         .in_dim(encoder_->embed_dim())
                                                         .channels(options.channels())
                                                         .height(out_size)
                                                         .width(out_size)
                                                         .hidden(options.decoder_width())));
}

const torch::Tensor& Reconstruction::images_of(const Batch& batch) const {
  const torch::Tensor& x = batch.at(encoder_->input());
  SSLAB_CHECK(x.dim() == 4 && x.size(1) == options_.channels() && x.size(2) == options_.image_size() &&
                  x.size(3) == options_.image_size(),
              where_, ": images in '", encoder_->input(), "' are ", x.sizes(), ", but the objective expects [B, ",
              options_.channels(), ", ", options_.image_size(), ", ", options_.image_size(),
              "] (set its image_size and channels)");
  return x;
}

torch::Tensor Reconstruction::decode(const torch::Tensor& input) {
  return decoder_->forward(embed_images(*encoder_, input));
}

// The loss is the mean squared error itself, logged as "<objective>/loss".
ObjectiveOutput Reconstruction::compute(const Batch& batch) {
  return {forward(images_of(batch), c10::nullopt).loss, {}};
}

std::map<std::string, torch::Tensor> Reconstruction::pictures(const Batch& batch) {
  torch::Tensor images = images_of(batch);
  images = images.narrow(0, 0, std::min<int64_t>(8, images.size(0))).to(torch::kFloat32);
  // Its own generator: the training's random stream is not touched. It draws
  // on the CPU; the images stay on the model's device.
  at::Generator gen = at::detail::createCPUGenerator(20160425);
  Output out = forward(images, gen);
  torch::Tensor rows = torch::cat({out.input, out.full, images}, 0).clamp(0, 1).cpu();
  return {{"reconstruction", image_grid(rows, images.size(0))}};
}

Inpainting::Inpainting(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, std::string where)
    : Reconstruction(std::move(encoder), options, region_side(options), std::move(where)), size_(region_side(options)) {
  SSLAB_CHECK(options.where() == "center" || options.where() == "random", where_,
              ": where must be center or random, got '", options.where(), "'");
}

Reconstruction::Output Inpainting::forward(const torch::Tensor& images, c10::optional<at::Generator> generator) {
  const int64_t h = images.size(2), w = images.size(3);
  Regions r = inpainting_regions(images.size(0), h, w, size_, options_.where(), generator);
  torch::Tensor m = region_mask(r, h, w, images.device()).to(images.scalar_type());
  Output out;
  out.input = images * (1 - m) + options_.fill() * m;
  out.pred = decode(out.input);
  out.loss = torch::mse_loss(out.pred, crop_regions(images, r));
  if (!is_training()) {  // for pictures: the prediction pasted into its region
    torch::NoGradGuard no_grad;
    out.full = out.input.detach().clone();
    auto top = r.top.cpu(), left = r.left.cpu();
    for (int64_t b = 0; b < images.size(0); ++b)
      out.full[b]
          .narrow(1, top[b].item<int64_t>(), size_)
          .narrow(2, left[b].item<int64_t>(), size_)
          .copy_(out.pred[b].detach());
  }
  return out;
}

Denoising::Denoising(std::shared_ptr<Encoder> encoder, const ReconstructionOptions& options, std::string where)
    : Reconstruction(std::move(encoder), options, options.image_size(), std::move(where)) {
  const std::string& c = options.corruption();
  SSLAB_CHECK(c == "mask" || c == "gaussian" || c == "salt_pepper", where_,
              ": corruption must be mask, gaussian or salt_pepper, got '", c, "'");
}

Reconstruction::Output Denoising::forward(const torch::Tensor& images, c10::optional<at::Generator> generator) {
  Output out;
  out.input = corrupt(images, options_.corruption(), options_.level(), generator).first;
  out.pred = decode(out.input);
  out.loss = torch::mse_loss(out.pred, images);
  out.full = out.pred.detach();
  return out;
}

}  // namespace sslab::vision
