// The vision plugin: Fashion-MNIST and image-folder datasets, image
// augmentations, the ViT encoder and the MAE objective. Every component and
// the recipe keys it reads are registered here.
#include <sslab/components.h>
#include <sslab/plugin.h>

#include "cnn.h"
#include "idx_dataset.h"
#include "image_folder.h"
#include "mae.h"
#include "transforms.h"
#include "vit.h"

namespace sslab::vision {
namespace {

void register_datasets(Registrar& r) {
  Schema fmnist;
  fmnist.string("root", std::string("/usr/share/datasets/fashion-mnist"),
                "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
  fmnist.string("split", std::string("train"), "train (60000 images) or test (10000)").choices({"train", "test"});
  r.dataset("vision.fashion_mnist", "Fashion-MNIST from IDX files (plain or .gz): image [1,28,28] in [0,1], label",
            fmnist, [](const Config& c, BuildContext&) {
              return std::make_shared<FashionMnist>(c.get_path("root"), c.get_string("split"));
            });

  Schema folder;
  folder.string("root", required, "folder of class sub-folders: root/<class>/<image>.png|jpg");
  folder.integer("channels", int64_t{3}, "1 (grey) or 3 (RGB)").min(1).max(3);
  folder.integer("size", int64_t{0}, "resize to size x size, bilinear (0: keep the decoded size)").min(0);
  r.dataset("vision.image_folder", "PNG/JPEG images in class sub-folders; labels from sorted folder names", folder,
            [](const Config& c, BuildContext&) {
              SSLAB_CHECK(c.get_int("channels") != 2, c.locate("channels"), " must be 1 or 3, got 2");
              return std::make_shared<ImageFolder>(c.get_path("root"), c.get_int("channels"), c.get_int("size"));
            });
}

void register_transforms(Registrar& r) {
  Schema crop;
  crop.integer("size", int64_t{28}, "output side in pixels").min(1);
  crop.numbers("scale", std::vector<double>{0.08, 1.0}, "range of the crop's share of the image area")
      .length(2)
      .greater_than(0)
      .max(1);
  crop.numbers("ratio", std::vector<double>{3.0 / 4.0, 4.0 / 3.0}, "range of the crop's aspect ratio (w/h)")
      .length(2)
      .greater_than(0);
  r.transform("vision.random_resized_crop", "random crop of random area and aspect ratio, resized (bilinear)", crop,
              [](const Config& c, BuildContext&) {
                auto scale = c.get_floats("scale"), ratio = c.get_floats("ratio");
                SSLAB_CHECK(scale[0] <= scale[1], c.locate("scale"), " must be [lo, hi] with lo <= hi");
                SSLAB_CHECK(ratio[0] <= ratio[1], c.locate("ratio"), " must be [lo, hi] with lo <= hi");
                return std::make_shared<RandomResizedCrop>(c.get_int("size"), scale, ratio);
              });

  Schema flip;
  flip.number("p", 0.5, "probability of flipping").min(0).max(1);
  r.transform("vision.horizontal_flip", "mirror left-right with probability p", flip,
              [](const Config& c, BuildContext&) { return std::make_shared<HorizontalFlip>(c.get_float("p")); });

  Schema jitter;
  jitter.number("brightness", 0.4, "brightness factor drawn from [1-b, 1+b]").min(0);
  jitter.number("contrast", 0.4, "contrast factor drawn from [1-c, 1+c]").min(0);
  jitter.number("p", 0.8, "probability of jittering").min(0).max(1);
  r.transform("vision.color_jitter", "random brightness and contrast, in random order, with probability p", jitter,
              [](const Config& c, BuildContext&) {
                return std::make_shared<ColorJitter>(c.get_float("brightness"), c.get_float("contrast"),
                                                     c.get_float("p"));
              });

  Schema blur;
  blur.integer("kernel_size", int64_t{3}, "odd kernel side in pixels").min(1);
  blur.numbers("sigma", std::vector<double>{0.1, 2.0}, "range of the Gaussian's standard deviation (pixels)")
      .length(2)
      .greater_than(0);
  blur.number("p", 0.5, "probability of blurring").min(0).max(1);
  r.transform("vision.gaussian_blur", "Gaussian blur of random sigma with probability p", blur,
              [](const Config& c, BuildContext&) {
                SSLAB_CHECK(c.get_int("kernel_size") % 2 == 1, c.locate("kernel_size"), " must be odd, got ",
                            c.get_int("kernel_size"));
                auto sigma = c.get_floats("sigma");
                SSLAB_CHECK(sigma[0] <= sigma[1], c.locate("sigma"), " must be [lo, hi] with lo <= hi");
                return std::make_shared<GaussianBlur>(c.get_int("kernel_size"), sigma, c.get_float("p"));
              });

  Schema solarize;
  solarize.number("threshold", 0.5, "pixels at or above it are inverted").min(0).max(1);
  solarize.number("p", 0.2, "probability of solarizing").min(0).max(1);
  r.transform("vision.solarize", "invert pixels above a threshold with probability p", solarize,
              [](const Config& c, BuildContext&) {
                return std::make_shared<Solarize>(c.get_float("threshold"), c.get_float("p"));
              });

  Schema norm;
  norm.numbers("mean", std::vector<double>{0.2860},
               "per-channel mean (one value: all channels); default Fashion-MNIST");
  norm.numbers("std", std::vector<double>{0.3530}, "per-channel std (one value: all channels); default Fashion-MNIST")
      .greater_than(0);
  r.transform("vision.normalize", "(x - mean) / std per channel", norm, [](const Config& c, BuildContext&) {
    SSLAB_CHECK(c.get_floats("mean").size() == c.get_floats("std").size(), c.locate("std"),
                " must have as many values as mean (", c.get_floats("mean").size(), ")");
    return std::make_shared<Normalize>(c.get_floats("mean"), c.get_floats("std"));
  });
}

void register_encoders(Registrar& r) {
  Schema vit;
  vit.integer("image_size", int64_t{28}, "side of the (square) input images").min(1);
  vit.integer("patch_size", int64_t{4}, "side of the square patches; divides image_size").min(1);
  vit.integer("channels", int64_t{1}, "image channels").min(1);
  vit.integer("dim", int64_t{192}, "token width; a multiple of 4 and of heads").min(4);
  vit.integer("depth", int64_t{6}, "transformer blocks").min(1);
  vit.integer("heads", int64_t{3}, "attention heads").min(1);
  vit.number("mlp_ratio", 4.0, "MLP hidden width / dim").greater_than(0);
  vit.string("pool", std::string("mean"),
             "embedding: mean of patch tokens, the [CLS] token, or grid: the means of a 2x2 grid of cells (4 x dim)")
      .choices({"mean", "cls", "grid"});
  vit.boolean("cls_token", false, "prepend a learned [CLS] token (implied by pool = \"cls\")");
  r.encoder("vision.vit", "Vision Transformer (MAE style: fixed 2-D sin-cos positions, pre-norm blocks)", vit,
            [](const Config& c, BuildContext&) {
              const int64_t s = c.get_int("image_size"), p = c.get_int("patch_size");
              SSLAB_CHECK(s % p == 0, c.locate("patch_size"), " (", p, ") must divide image_size (", s, ")");
              SSLAB_CHECK(c.get_int("dim") % 4 == 0, c.locate("dim"), " must be a multiple of 4, got ",
                          c.get_int("dim"));
              SSLAB_CHECK(c.get_int("dim") % c.get_int("heads") == 0, c.locate("heads"), " (", c.get_int("heads"),
                          ") must divide dim (", c.get_int("dim"), ")");
              auto enc = std::make_shared<Vit>(VitOptions()
                                                   .image_size(s)
                                                   .patch_size(p)
                                                   .channels(c.get_int("channels"))
                                                   .dim(c.get_int("dim"))
                                                   .depth(c.get_int("depth"))
                                                   .heads(c.get_int("heads"))
                                                   .mlp_ratio(c.get_float("mlp_ratio"))
                                                   .pool(c.get_string("pool"))
                                                   .cls_token(c.get_bool("cls_token")));
              enc->set_input(c.get_string("input").empty() ? "image" : c.get_string("input"));
              return enc;
            });
}

void register_cnn(Registrar& r) {
  Schema cnn;
  cnn.integer("channels_in", int64_t{1}, "image channels").min(1);
  cnn.integers("channels", std::vector<int64_t>{32, 64, 128},
               "width of each stage (the first at full resolution, each next one halves it)")
      .min(1);
  cnn.integer("blocks", int64_t{1}, "residual basic blocks per stage").min(1);
  cnn.boolean("stem_pool", false, "2x2 max pool after the stem: the first stage at half resolution (~4x cheaper)");
  cnn.string("pool", std::string("mean"), "embedding: mean over the last feature map, or grid (means of its 2x2 cells, 4x wider)")
      .choices({"mean", "grid"});
  cnn.boolean("channels_last", true,
              "NHWC activations and weights: same results, faster batch norm, pooling and convolutions");
  cnn.numbers("input_mean", std::vector<double>{},
              "normalise inputs inside the encoder: (x - mean) / std, one value or one per channel (empty: none); "
              "training views, online probe and evaluation then all see the same scale");
  cnn.numbers("input_std", std::vector<double>{}, "see input_mean");
  cnn.integer("input_size", int64_t{0},
              "bilinearly resize inputs to this square size before the stem (0: as given): a finer grid at every "
              "stage for small images, also at evaluation")
      .min(0);
  r.encoder("vision.cnn", "small ResNet (basic blocks, mean or 2x2-grid pooling) for joint-embedding methods", cnn,
            [](const Config& c, BuildContext&) {
              auto enc = std::make_shared<Cnn>(CnnOptions()
                                                   .in_channels(c.get_int("channels_in"))
                                                   .channels(c.get_ints("channels"))
                                                   .blocks(c.get_int("blocks"))
                                                   .stem_pool(c.get_bool("stem_pool"))
                                                   .pool(c.get_string("pool"))
                                                   .channels_last(c.get_bool("channels_last"))
                                                   .input_mean(c.get_floats("input_mean"))
                                                   .input_std(c.get_floats("input_std"))
                                                   .input_size(c.get_int("input_size")));
              enc->set_input(c.get_string("input").empty() ? "image" : c.get_string("input"));
              return enc;
            });
}

void register_objectives(Registrar& r) {
  Schema mae;
  mae.string("encoder", std::string("image"), "the vision.vit encoder (name under [encoders])");
  mae.number("mask_ratio", 0.75, "share of patches hidden from the encoder, per image").min(0).max(0.99);
  mae.integer("decoder_dim", int64_t{128}, "decoder width; a multiple of 4 and of decoder_heads").min(4);
  mae.integer("decoder_depth", int64_t{2}, "decoder transformer blocks").min(1);
  mae.integer("decoder_heads", int64_t{4}, "decoder attention heads").min(1);
  mae.number("decoder_mlp_ratio", 4.0, "decoder MLP hidden width / decoder_dim").greater_than(0);
  mae.boolean("norm_pix_loss", true, "regress per-patch standardised pixels (MAE's norm_pix_loss)");
  r.objective("vision.mae", "masked autoencoder: reconstruct hidden patches from visible ones (He et al. 2021)", mae,
              [](const Config& c, BuildContext& ctx) {
                auto enc = ctx.encoder(c.get_string("encoder"), c.locate("encoder"));
                SSLAB_CHECK(c.get_int("decoder_dim") % 4 == 0, c.locate("decoder_dim"),
                            " must be a multiple of 4, got ", c.get_int("decoder_dim"));
                SSLAB_CHECK(c.get_int("decoder_dim") % c.get_int("decoder_heads") == 0, c.locate("decoder_heads"), " (",
                            c.get_int("decoder_heads"), ") must divide decoder_dim (", c.get_int("decoder_dim"), ")");
                return std::make_shared<Mae>(enc,
                                             MaeOptions()
                                                 .mask_ratio(c.get_float("mask_ratio"))
                                                 .decoder_dim(c.get_int("decoder_dim"))
                                                 .decoder_depth(c.get_int("decoder_depth"))
                                                 .decoder_heads(c.get_int("decoder_heads"))
                                                 .decoder_mlp_ratio(c.get_float("decoder_mlp_ratio"))
                                                 .norm_pix_loss(c.get_bool("norm_pix_loss")),
                                             c.locate("encoder"));
              });
}

void register_components(Registrar& r) {
  register_datasets(r);
  register_cnn(r);
  register_transforms(r);
  register_encoders(r);
  register_objectives(r);
}

}  // namespace
}  // namespace sslab::vision

SSLAB_PLUGIN("vision", "0.1.0", "Images: Fashion-MNIST and image folders, augmentations, ViT encoder, MAE objective",
             sslab::vision::register_components)
