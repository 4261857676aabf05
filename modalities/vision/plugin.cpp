// The vision plugin: Fashion-MNIST and image-folder datasets, image
// augmentations, the ViT encoder and the MAE objective. Every component and
// the recipe keys it reads are registered here.
#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>

#include "cnn.h"
#include "idx_dataset.h"
#include "image_folder.h"
#include "mae.h"
#include "pretext.h"
#include "transforms.h"
#include "vit.h"

namespace sslab::vision {
namespace {

void register_datasets(Registrar& r) {
  using F = FashionMnistOptions;
  Settings<F> fmnist;
  fmnist.add("root", &F::root, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]").path();
  fmnist.add("split", &F::split, "train (60000 images) or test (10000)").choices({"train", "test"});
  r.dataset("vision.fashion_mnist", "Fashion-MNIST from IDX files (plain or .gz): image [1,28,28] in [0,1], label",
            fmnist.schema(), [fmnist](const Config& c, BuildContext&) {
              F o = fmnist.read(c);
              return std::make_shared<FashionMnist>(o.root, o.split);
            });

  using I = ImageFolderOptions;
  Settings<I> folder;
  folder.add("root", &I::root, "folder of class sub-folders: root/<class>/<image>.png|jpg").required().path();
  folder.add("channels", &I::channels, "1 (grey) or 3 (RGB)").min(1).max(3);
  folder.add("size", &I::size, "resize to size x size, bilinear (0: keep the decoded size)").min(0);
  r.dataset("vision.image_folder", "PNG/JPEG images in class sub-folders; labels from sorted folder names",
            folder.schema(), [folder](const Config& c, BuildContext&) {
              I o = folder.read(c);
              SSLAB_CHECK(o.channels != 2, c.locate("channels"), " must be 1 or 3, got 2");
              return std::make_shared<ImageFolder>(o.root, o.channels, o.size);
            });
}

void register_transforms(Registrar& r) {
  using C = RandomResizedCropOptions;
  Settings<C> crop;
  crop.add("size", &C::size, "output side in pixels").min(1);
  crop.add("scale", &C::scale, "range of the crop's share of the image area").length(2).greater_than(0).max(1);
  crop.add("ratio", &C::ratio, "range of the crop's aspect ratio (w/h)").length(2).greater_than(0);
  r.transform("vision.random_resized_crop", "random crop of random area and aspect ratio, resized (bilinear)",
              crop.schema(), [crop](const Config& c, BuildContext&) {
                C o = crop.read(c);
                SSLAB_CHECK(o.scale[0] <= o.scale[1], c.locate("scale"), " must be [lo, hi] with lo <= hi");
                SSLAB_CHECK(o.ratio[0] <= o.ratio[1], c.locate("ratio"), " must be [lo, hi] with lo <= hi");
                return std::make_shared<RandomResizedCrop>(o.size, o.scale, o.ratio);
              });

  Settings<HorizontalFlipOptions> flip;
  flip.add("p", &HorizontalFlipOptions::p, "probability of flipping").min(0).max(1);
  r.transform("vision.horizontal_flip", "mirror left-right with probability p", flip.schema(),
              [flip](const Config& c, BuildContext&) { return std::make_shared<HorizontalFlip>(flip.read(c).p); });

  using J = ColorJitterOptions;
  Settings<J> jitter;
  jitter.add("brightness", &J::brightness, "brightness factor drawn from [1-b, 1+b]").min(0);
  jitter.add("contrast", &J::contrast, "contrast factor drawn from [1-c, 1+c]").min(0);
  jitter.add("p", &J::p, "probability of jittering").min(0).max(1);
  r.transform("vision.color_jitter", "random brightness and contrast, in random order, with probability p",
              jitter.schema(), [jitter](const Config& c, BuildContext&) {
                J o = jitter.read(c);
                return std::make_shared<ColorJitter>(o.brightness, o.contrast, o.p);
              });

  using B = GaussianBlurOptions;
  Settings<B> blur;
  blur.add("kernel_size", &B::kernel_size, "odd kernel side in pixels").min(1);
  blur.add("sigma", &B::sigma, "range of the Gaussian's standard deviation (pixels)").length(2).greater_than(0);
  blur.add("p", &B::p, "probability of blurring").min(0).max(1);
  r.transform("vision.gaussian_blur", "Gaussian blur of random sigma with probability p", blur.schema(),
              [blur](const Config& c, BuildContext&) {
                B o = blur.read(c);
                SSLAB_CHECK(o.kernel_size % 2 == 1, c.locate("kernel_size"), " must be odd, got ", o.kernel_size);
                SSLAB_CHECK(o.sigma[0] <= o.sigma[1], c.locate("sigma"), " must be [lo, hi] with lo <= hi");
                return std::make_shared<GaussianBlur>(o.kernel_size, o.sigma, o.p);
              });

  using S = SolarizeOptions;
  Settings<S> solarize;
  solarize.add("threshold", &S::threshold, "pixels at or above it are inverted").min(0).max(1);
  solarize.add("p", &S::p, "probability of solarizing").min(0).max(1);
  r.transform("vision.solarize", "invert pixels above a threshold with probability p", solarize.schema(),
              [solarize](const Config& c, BuildContext&) {
                S o = solarize.read(c);
                return std::make_shared<Solarize>(o.threshold, o.p);
              });

  using N = NormalizeOptions;
  Settings<N> norm;
  norm.add("mean", &N::mean, "per-channel mean (one value: all channels); default Fashion-MNIST");
  norm.add("std", &N::stdev, "per-channel std (one value: all channels); default Fashion-MNIST").greater_than(0);
  r.transform("vision.normalize", "(x - mean) / std per channel", norm.schema(), [norm](const Config& c, BuildContext&) {
    N o = norm.read(c);
    SSLAB_CHECK(o.mean.size() == o.stdev.size(), c.locate("std"), " must have as many values as mean (",
                o.mean.size(), ")");
    return std::make_shared<Normalize>(o.mean, o.stdev);
  });
}

void register_encoders(Registrar& r) {
  using V = VitOptions;
  Settings<V> vit;
  vit.add("image_size", SSLAB_ARG(V, image_size), "side of the (square) input images").min(1);
  vit.add("patch_size", SSLAB_ARG(V, patch_size), "side of the square patches; divides image_size").min(1);
  vit.add("channels", SSLAB_ARG(V, channels), "image channels").min(1);
  vit.add("dim", SSLAB_ARG(V, dim), "token width; a multiple of 4 and of heads").min(4);
  vit.add("depth", SSLAB_ARG(V, depth), "transformer blocks").min(1);
  vit.add("heads", SSLAB_ARG(V, heads), "attention heads").min(1);
  vit.add("mlp_ratio", SSLAB_ARG(V, mlp_ratio), "MLP hidden width / dim").greater_than(0);
  vit.add("pool", SSLAB_ARG(V, pool),
          "embedding: mean of patch tokens, the [CLS] token, or grid: the means of a 2x2 grid of cells (4 x dim)")
      .choices({"mean", "cls", "grid"});
  vit.add("cls_token", SSLAB_ARG(V, cls_token), "prepend a learned [CLS] token (implied by pool = \"cls\")");
  r.encoder("vision.vit", "Vision Transformer (MAE style: fixed 2-D sin-cos positions, pre-norm blocks)",
            vit.schema(), [vit](const Config& c, BuildContext&) {
              V o = vit.read(c);
              const int64_t s = o.image_size(), p = o.patch_size();
              SSLAB_CHECK(s % p == 0, c.locate("patch_size"), " (", p, ") must divide image_size (", s, ")");
              SSLAB_CHECK(o.dim() % 4 == 0, c.locate("dim"), " must be a multiple of 4, got ", o.dim());
              SSLAB_CHECK(o.dim() % o.heads() == 0, c.locate("heads"), " (", o.heads(), ") must divide dim (", o.dim(),
                          ")");
              auto enc = std::make_shared<Vit>(o);
              enc->set_input(c.get_string("input").empty() ? "image" : c.get_string("input"));
              return enc;
            });
}

void register_cnn(Registrar& r) {
  using O = CnnOptions;
  Settings<O> cnn;
  cnn.add("channels_in", SSLAB_ARG(O, in_channels), "image channels").min(1);
  cnn.add("channels", SSLAB_ARG(O, channels),
          "width of each stage (the first at full resolution, each next one halves it)")
      .min(1);
  cnn.add("blocks", SSLAB_ARG(O, blocks), "residual basic blocks per stage").min(1);
  cnn.add("stem_pool", SSLAB_ARG(O, stem_pool),
          "2x2 max pool after the stem: the first stage at half resolution (~4x cheaper)");
  cnn.add("pool", SSLAB_ARG(O, pool),
          "embedding: mean over the last feature map, or grid (means of its 2x2 cells, 4x wider)")
      .choices({"mean", "grid"});
  cnn.add("channels_last", SSLAB_ARG(O, channels_last),
          "NHWC activations and weights: same results, faster batch norm, pooling and convolutions");
  cnn.add("input_mean", SSLAB_ARG(O, input_mean),
          "normalise inputs inside the encoder: (x - mean) / std, one value or one per channel (empty: none); "
          "training views, online probe and evaluation then all see the same scale");
  cnn.add("input_std", SSLAB_ARG(O, input_std), "see input_mean");
  cnn.add("input_size", SSLAB_ARG(O, input_size),
          "bilinearly resize inputs to this square size before the stem (0: as given): a finer grid at every "
          "stage for small images, also at evaluation")
      .min(0);
  r.encoder("vision.cnn", "small ResNet (basic blocks, mean or 2x2-grid pooling) for joint-embedding methods",
            cnn.schema(), [cnn](const Config& c, BuildContext&) {
              auto enc = std::make_shared<Cnn>(cnn.read(c));
              enc->set_input(c.get_string("input").empty() ? "image" : c.get_string("input"));
              return enc;
            });
}

void register_objectives(Registrar& r) {
  using O = MaeOptions;
  Settings<O> mae;
  mae.schema().string("encoder", "image", "the vision.vit encoder (name under [encoders])");
  mae.add("mask_ratio", SSLAB_ARG(O, mask_ratio), "share of patches hidden from the encoder, per image")
      .min(0)
      .max(0.99);
  mae.add("decoder_dim", SSLAB_ARG(O, decoder_dim), "decoder width; a multiple of 4 and of decoder_heads").min(4);
  mae.add("decoder_depth", SSLAB_ARG(O, decoder_depth), "decoder transformer blocks").min(1);
  mae.add("decoder_heads", SSLAB_ARG(O, decoder_heads), "decoder attention heads").min(1);
  mae.add("decoder_mlp_ratio", SSLAB_ARG(O, decoder_mlp_ratio), "decoder MLP hidden width / decoder_dim")
      .greater_than(0);
  mae.add("norm_pix_loss", SSLAB_ARG(O, norm_pix_loss), "regress per-patch standardised pixels (MAE's norm_pix_loss)");
  r.objective("vision.mae", "masked autoencoder: reconstruct hidden patches from visible ones (He et al. 2021)",
              mae.schema(), [mae](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                O o = mae.read(c);
                SSLAB_CHECK(o.decoder_dim() % 4 == 0, c.locate("decoder_dim"), " must be a multiple of 4, got ",
                            o.decoder_dim());
                SSLAB_CHECK(o.decoder_dim() % o.decoder_heads() == 0, c.locate("decoder_heads"), " (",
                            o.decoder_heads(), ") must divide decoder_dim (", o.decoder_dim(), ")");
                return std::make_shared<Mae>(enc, o, c.locate("encoder"));
              });
}

void register_pretext(Registrar& r) {
  using R = RotationOptions;
  Settings<R> rot;
  rot.schema().string("encoder", "image", "the image encoder (name under [encoders]); square images");
  rot.add("all_rotations", SSLAB_ARG(R, all_rotations),
          "every image in all four rotations, as in the paper (the encoder sees 4x the batch); false: one random "
          "rotation per image");
  rot.add("hidden", SSLAB_ARG(R, hidden), "0: a linear 4-way classifier on the embedding; > 0: an MLP of this width")
      .min(0);
  r.objective("vision.rotation",
              "rotation prediction: classify an image's rotation by 0, 90, 180 or 270 degrees (Gidaris et al. 2018)",
              rot.schema(), [rot](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                return std::make_shared<RotationPrediction>(enc, rot.read(c), c.locate("encoder"));
              });

  using O = ReconstructionOptions;
  auto common = [](Settings<O>& s) {
    s.schema().string("encoder", "image", "the image encoder (name under [encoders])");
    s.add("image_size", SSLAB_ARG(O, image_size), "side of the square images the encoder is given").min(1);
    s.add("channels", SSLAB_ARG(O, channels), "image channels").min(1);
    s.add("decoder_width", SSLAB_ARG(O, decoder_width),
          "channels of the decoder's first feature map (halved at each upsampling, at least 16)")
        .min(1);
  };
  Settings<O> inpaint;
  common(inpaint);
  inpaint.add("region", SSLAB_ARG(O, region), "side of the hidden square / image side").greater_than(0).max(1);
  inpaint.add("where", SSLAB_ARG(O, where), "where the square is: the centre of every image or a random place")
      .choices({"center", "random"});
  inpaint.add("fill", SSLAB_ARG(O, fill), "value written into the hidden square");
  r.objective("vision.inpainting",
              "context encoder: reconstruct a hidden square of the image from the rest, L2 on the square "
              "(Pathak et al. 2016)",
              inpaint.schema(), [inpaint](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                return std::make_shared<Inpainting>(enc, inpaint.read(c), c.locate("encoder"));
              });

  Settings<O> denoise;
  common(denoise);
  denoise.add("corruption", SSLAB_ARG(O, corruption),
              "mask: values set to 0 with probability level; gaussian: noise of std level; salt_pepper: values set "
              "to 0 or 1 with probability level")
      .choices({"mask", "gaussian", "salt_pepper"});
  denoise.add("level", SSLAB_ARG(O, level), "probability (mask, salt_pepper) or standard deviation (gaussian)").min(0);
  r.objective("vision.denoising",
              "denoising autoencoder: reconstruct the clean image from a corrupted one, L2 (Vincent et al. 2008)",
              denoise.schema(), [denoise](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                O o = denoise.read(c);
                SSLAB_CHECK(o.corruption() == "gaussian" || o.level() <= 1, c.locate("level"),
                            " is a probability for corruption = \"", o.corruption(), "\": must be <= 1, got ",
                            o.level());
                return std::make_shared<Denoising>(enc, o, c.locate("encoder"));
              });
}

void register_components(Registrar& r) {
  register_datasets(r);
  register_cnn(r);
  register_transforms(r);
  register_encoders(r);
  register_objectives(r);
  register_pretext(r);
}

}  // namespace
}  // namespace sslab::vision

SSLAB_PLUGIN("vision", "0.1.0", "Images: Fashion-MNIST and image folders, augmentations, ViT encoder, MAE objective",
             sslab::vision::register_components)
