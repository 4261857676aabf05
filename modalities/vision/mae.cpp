#include "mae.h"

#include <cmath>
#include <typeinfo>

#include <sslab/images.h>
#include <sslab/nn/embedding.h>

#include <ATen/CPUGeneratorImpl.h>

namespace sslab::vision {

// ---------------------------------------------------------------- masking and loss

int64_t num_visible(int64_t num_patches, double mask_ratio) {
  return static_cast<int64_t>(std::llround(static_cast<double>(num_patches) * (1.0 - mask_ratio)));
}

RandomMask random_masking(int64_t batch, int64_t num_patches, int64_t n_keep, const torch::Device& device,
                          c10::optional<at::Generator> generator) {
  SSLAB_CHECK(n_keep >= 1 && n_keep <= num_patches, "random masking: cannot keep ", n_keep, " of ", num_patches,
              " patches");
  torch::Tensor noise = torch::rand({batch, num_patches}, generator, torch::TensorOptions().device(device));
  torch::Tensor ids_shuffle = torch::argsort(noise, /*dim=*/int64_t{1});  // ascending: the first n_keep are kept
  RandomMask out;
  out.ids_restore = torch::argsort(ids_shuffle, /*dim=*/int64_t{1});
  out.ids_keep = ids_shuffle.narrow(1, 0, n_keep);
  out.mask = out.ids_restore.ge(n_keep).to(torch::kFloat32);
  return out;
}

torch::Tensor mae_loss(const torch::Tensor& pred, const torch::Tensor& patches, const torch::Tensor& mask,
                       bool norm_pix, double eps) {
  SSLAB_CHECK(pred.sizes() == patches.sizes(), "mae loss: predictions ", pred.sizes(), " and targets ", patches.sizes(),
              " differ in shape");
  SSLAB_CHECK(mask.dim() == 2 && mask.size(0) == pred.size(0) && mask.size(1) == pred.size(1), "mae loss: mask ",
              mask.sizes(), " does not match predictions ", pred.sizes());
  torch::Tensor target = patches;
  if (norm_pix) {
    torch::NoGradGuard no_grad;
    const int64_t P = patches.size(-1);
    SSLAB_CHECK(P > 1, "mae loss: norm_pix needs patches of more than one value");
    torch::Tensor centred = patches - patches.mean(-1, /*keepdim=*/true);
    torch::Tensor var = centred.pow(2).sum(-1, /*keepdim=*/true) / static_cast<double>(P - 1);  // unbiased
    target = centred / (var + eps).sqrt();
  }
  torch::Tensor per_patch = (pred - target).pow(2).mean(-1);  // [B,N]
  torch::Tensor m = mask.to(per_patch.scalar_type());
  return (per_patch * m).sum() / m.sum();
}

// ---------------------------------------------------------------- objective

namespace {

void init_linear(torch::nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(linear->weight);
  linear->bias.zero_();
}

}  // namespace

Mae::Mae(std::shared_ptr<Encoder> encoder, const MaeOptions& options, const std::string& where)
    : encoder_(std::dynamic_pointer_cast<Vit>(encoder)), options_(options) {
  SSLAB_CHECK(encoder, where.empty() ? "" : where + ": ", "vision.mae needs an encoder");
  if (!encoder_) {
    const Encoder& e = *encoder;
    throw UserError(str(
        where.empty() ? "" : where + ": ", "vision.mae needs a vision.vit encoder (it encodes only the ",
        "visible patches through the ViT's masked forward), got an encoder of type ", c10::demangle(typeid(e).name())));
  }
  SSLAB_CHECK(options_.mask_ratio() >= 0 && options_.mask_ratio() < 1, "vision.mae: mask_ratio must be in [0, 1), got ",
              options_.mask_ratio());
  const int64_t N = encoder_->num_patches();
  n_keep_ = vision::num_visible(N, options_.mask_ratio());
  SSLAB_CHECK(n_keep_ >= 1 && n_keep_ < N, where.empty() ? "" : where + ": ", "vision.mae: mask_ratio ",
              options_.mask_ratio(), " keeps ", n_keep_, " of ", N,
              " patches visible; it must hide at least one patch and keep at least one");
  const int64_t dd = options_.decoder_dim();
  SSLAB_CHECK(dd % 4 == 0, "vision.mae: decoder_dim must be a multiple of 4, got ", dd);
  SSLAB_CHECK(dd % options_.decoder_heads() == 0, "vision.mae: decoder_dim (", dd,
              ") must be a multiple of decoder_heads (", options_.decoder_heads(), ")");
  const bool cls = encoder_->has_cls_token();
  const int64_t p = encoder_->patch_size();
  const int64_t grid = encoder_->options().image_size() / p;

  decoder_embed_ = register_module("decoder_embed", torch::nn::Linear(encoder_->options().dim(), dd));
  init_linear(decoder_embed_);
  mask_token_ = register_parameter("mask_token", torch::zeros({1, 1, dd}));
  {
    torch::NoGradGuard no_grad;
    mask_token_.normal_(0.0, 0.02);
  }
  decoder_pos_embed_ = register_buffer("decoder_pos_embed", nn::sincos_pos_embed_2d(dd, grid, grid, cls).unsqueeze(0));
  decoder_ = nn::TransformerStack(nn::TransformerStackOptions(dd, options_.decoder_depth(), options_.decoder_heads())
                                      .mlp_ratio(options_.decoder_mlp_ratio()));
  register_module("decoder_blocks", decoder_->blocks);
  register_module("decoder_norm", decoder_->norm);
  decoder_pred_ = register_module("decoder_pred", torch::nn::Linear(dd, p * p * encoder_->channels()));
  init_linear(decoder_pred_);
}

torch::Tensor Mae::forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) {
  const bool cls = encoder_->has_cls_token();
  const int64_t B = latent.size(0), N = ids_restore.size(1), dd = options_.decoder_dim();
  torch::Tensor x = decoder_embed_(latent);
  torch::Tensor cls_tok;
  if (cls) {
    cls_tok = x.narrow(1, 0, 1);
    x = x.narrow(1, 1, x.size(1) - 1);
  }
  const int64_t visible = x.size(1);
  x = torch::cat({x, mask_token_.expand({B, N - visible, dd})}, 1);
  x = torch::gather(x, 1, ids_restore.unsqueeze(-1).expand({B, N, dd}));  // back to patch order
  if (cls) x = torch::cat({cls_tok, x}, 1);
  x = decoder_pred_(decoder_(x + decoder_pos_embed_));
  return cls ? x.narrow(1, 1, N) : x;
}

Mae::Output Mae::forward(const torch::Tensor& images, const RandomMask& mask) {
  torch::Tensor latent = encoder_->forward_masked(images, mask.ids_keep);
  torch::Tensor pred = forward_decoder(latent, mask.ids_restore);
  torch::Tensor patches = nn::patchify(images, encoder_->patch_size());
  return {mae_loss(pred, patches, mask.mask, options_.norm_pix_loss()), pred, mask.mask};
}

Mae::Output Mae::forward(const torch::Tensor& images) {
  SSLAB_CHECK(images.dim() == 4, "vision.mae: expected images [B,C,H,W], got ", images.sizes());
  return forward(images, random_masking(images.size(0), encoder_->num_patches(), n_keep_, images.device()));
}

ObjectiveOutput Mae::compute(const Batch& batch) {
  Output out = forward(batch.at(encoder_->input()));
  return {out.loss, {{"mse_masked", out.loss.item<double>()}, {"visible", static_cast<double>(n_keep_)}}};
}

std::map<std::string, torch::Tensor> Mae::pictures(const Batch& batch) {
  torch::Tensor images = batch.at(encoder_->input());
  images = images.narrow(0, 0, std::min<int64_t>(8, images.size(0))).to(torch::kFloat32);
  const int64_t b = images.size(0), p = encoder_->patch_size(), c = encoder_->channels();
  // Its own generator: the training's random stream is not touched.
  at::Generator gen = at::detail::createCPUGenerator(20211111);
  RandomMask mask = random_masking(b, encoder_->num_patches(), n_keep_, torch::kCPU, gen);
  mask.ids_keep = mask.ids_keep.to(images.device());
  mask.ids_restore = mask.ids_restore.to(images.device());
  mask.mask = mask.mask.to(images.device());
  Output out = forward(images, mask);
  torch::Tensor patches = nn::patchify(images, p);  // [B, N, p*p*C]
  torch::Tensor pred = out.pred;
  if (options_.norm_pix_loss()) {
    torch::Tensor mean = patches.mean(-1, true), var = patches.var(-1, /*unbiased=*/true, /*keepdim=*/true);
    pred = pred * torch::sqrt(var + 1e-6) + mean;
  }
  torch::Tensor m = out.mask.unsqueeze(-1);  // 1 = hidden
  torch::Tensor seen = patches * (1 - m) + 0.5 * m;
  torch::Tensor recon = patches * (1 - m) + pred * m;
  auto image_of = [&](const torch::Tensor& x) { return nn::unpatchify(x, p, c).clamp(0, 1); };
  torch::Tensor rows = torch::cat({images.clamp(0, 1), image_of(seen), image_of(recon)}, 0);
  return {{"reconstruction", image_grid(rows, b)}};
}

}  // namespace sslab::vision
