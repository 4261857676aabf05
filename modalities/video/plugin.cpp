// The video plugin: FFmpeg-decoded clip datasets and in-memory Moving
// Fashion-MNIST, the conv + ConvGRU encoder, the frame decoder head, the
// frame-prediction objective, and the next-frame MSE and item-probe
// evaluators. Every component and the recipe keys it reads are registered here.
#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>

#include "datasets.h"
#include "evaluators.h"
#include "model.h"

namespace sslab::video {
namespace {

void register_datasets(Registrar& r) {
  Schema c;
  c.string("manifest", required,
           "TSV with a header: path, optional split (train/test), optional frames, optional classes (\"3,7\"); paths "
           "relative to the manifest");
  c.string("split", std::string("train"), "rows of this split: train, test, or all").choices({"train", "test", "all"});
  c.integer("frames", int64_t{20}, "frames per clip (T)").min(1);
  c.integer("stride", int64_t{1}, "step between sampled frames").min(1);
  c.string("start", std::string("first"),
           "clip start: first frame, center, or random (seeded by seed and sample index; seeks in the file)")
      .choices({"first", "center", "random"});
  c.integer("clips_per_video", int64_t{1}, "samples per file (each with its own random start)").min(1);
  c.integer("seed", int64_t{0}, "seed of random starts").min(0);
  c.integer("classes", int64_t{0}, "width of label.items (0: 1 + the largest class in the manifest)").min(0);
  c.integer("width", int64_t{0}, "resize frames to this width with swscale (0: keep)").min(0);
  c.integer("height", int64_t{0}, "resize frames to this height with swscale (0: keep)").min(0);
  c.string("pixel_format", std::string("gray"), "gray (C=1) or rgb (C=3)").choices({"gray", "rgb"});
  c.integer("decoder_threads", int64_t{1}, "FFmpeg decoder threads per file (0: FFmpeg's choice)").min(0);
  r.dataset("video.clips",
            "video files in a TSV manifest decoded with FFmpeg (any container/codec it reads): video.frames "
            "[T,C,H,W] in [0,1], label.items (multi-hot), label (single-item clips)",
            c, [](const Config& cfg, BuildContext&) {
              ClipsOptions o;
              o.manifest = cfg.get_path("manifest");
              o.split = cfg.get_string("split");
              o.frames = cfg.get_int("frames");
              o.stride = cfg.get_int("stride");
              o.start = cfg.get_string("start");
              o.clips_per_video = cfg.get_int("clips_per_video");
              o.seed = static_cast<uint64_t>(cfg.get_int("seed"));
              o.classes = cfg.get_int("classes");
              o.read.width = cfg.get_int("width");
              o.read.height = cfg.get_int("height");
              o.read.pixel_format = cfg.get_string("pixel_format");
              o.read.threads = static_cast<int>(cfg.get_int("decoder_threads"));
              try {
                return std::make_shared<ClipsDataset>(o);
              } catch (const DataError&) {
                throw;
              } catch (const UserError& e) {
                throw UserError(str(cfg.locate("manifest"), ": ", e.what()));
              }
            });

  Schema m;
  m.string("root", std::string("/usr/share/datasets/fashion-mnist"),
           "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
  m.string("split", std::string("train"), "source images: train or test").choices({"train", "test"});
  m.integer("size", int64_t{1000}, "number of clips").min(1);
  m.integer("seed", int64_t{0}, "clip seed").min(0);
  m.integer("frames", int64_t{20}, "frames per clip").min(1);
  m.integer("items", int64_t{2}, "items per clip (1: single-item clips with a \"label\")").min(1);
  m.integer("canvas", int64_t{64}, "canvas side in pixels").min(29);
  r.dataset("video.moving_fmnist",
            "Moving Fashion-MNIST made in memory (no files): video.frames [T,1,64,64], label.items, label (items = 1)",
            m, [](const Config& cfg, BuildContext&) {
              MovingDatasetOptions o;
              o.root = cfg.get_path("root");
              o.split = cfg.get_string("split");
              o.size = cfg.get_int("size");
              o.seed = static_cast<uint64_t>(cfg.get_int("seed"));
              o.clip.frames = cfg.get_int("frames");
              o.clip.items = cfg.get_int("items");
              o.clip.canvas = cfg.get_int("canvas");
              return std::make_shared<MovingFashionMnist>(o);
            });
}

void register_models(Registrar& r) {
  Schema e;
  e.integer("channels", int64_t{1}, "input channels: 1 (gray) or 3 (rgb)").min(1).max(3);
  e.integer("width", int64_t{32}, "frame features c (last conv level)").min(1);
  e.integer("hidden", int64_t{64}, "ConvGRU state channels (= embedding size)").min(1);
  e.integer("downsample", int64_t{2}, "stride-2 convolutions per frame (64x64 -> 16x16 grid at 2)").min(1).max(5);
  e.integer("layers", int64_t{1}, "stacked ConvGRU cells").min(1);
  e.integer("kernel", int64_t{3}, "ConvGRU kernel size (odd)").min(1);
  e.string("pool", std::string("mean"),
           "clip embedding: mean of the GRU state over time and space, the last frame's state, or both (the mean "
           "state next to the mean frame features)")
      .choices({"mean", "last", "both"});
  r.encoder("video.encoder", "per-frame conv net + ConvGRU; clip embedding = pooled GRU state", e,
            [](const Config& c, BuildContext&) {
              SSLAB_CHECK(c.get_int("kernel") % 2 == 1, c.locate("kernel"), " must be odd");
              VideoEncoderOptions o;
              o.in_channels(c.get_int("channels")).channels(c.get_int("width")).hidden(c.get_int("hidden"));
              o.downsample(c.get_int("downsample")).layers(c.get_int("layers")).kernel(c.get_int("kernel"));
              o.pool(c.get_string("pool"));
              return std::make_shared<VideoEncoder>(o);
            });

  Schema d;
  d.string("encoder", std::string("video"), "the video.encoder it decodes (name under [encoders])");
  d.integer("width", int64_t{64}, "channels of the first decoder level (halved at each upsampling)").min(1);
  d.string("output", std::string("linear"),
           "linear (pixels = the output clamped to [0,1]; pixel MSE on the raw output) or sigmoid (for loss = bce)")
      .choices({"linear", "sigmoid"});
  r.head("video.frame_decoder", "ConvGRU readout -> next frame (nearest upsampling + convs; linear or sigmoid output)",
         d, [](const Config& c, BuildContext& ctx) {
           auto enc =
               std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
           SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not a video.encoder");
           const auto& o = enc->options();
           return std::make_shared<FrameDecoder>(enc->readout_dim(), c.get_int("width"), o.downsample(),
                                                 o.in_channels(), c.get_string("output") == "sigmoid");
         });

  Schema p;
  p.string("encoder", std::string("video"), "the video.encoder (name under [encoders])");
  p.string("decoder", std::string("decoder"), "the video.frame_decoder (name under [heads])");
  p.integer("context_frames", int64_t{10}, "k: frames observed").min(1);
  p.integer("predict_frames", int64_t{10}, "n: frames predicted after them").min(1);
  p.string("loss", std::string("mse"), "pixel loss: mse, or bce (binary cross-entropy; decoder output = sigmoid)")
      .choices({"mse", "bce"});
  p.string("target", std::string("pixels"),
           "pixels, or latent: predict the frame features of an EMA copy of the encoder (the pixel decoder then "
           "trains on detached states, for the MSE metric)")
      .choices({"pixels", "latent"});
  p.number("ema_momentum", 0.99, "EMA momentum of the latent target").min(0).max(1);
  p.string("feedback", std::string("prediction"),
           "input while predicting: the model's previous prediction (as at test time) or the true frame")
      .choices({"prediction", "truth"});
  r.objective(
      "video.frame_prediction",
      "predict the next n frames from the first k (pixel or latent target); logs MSE per frame beside "
      "copy-last-frame",
      p, [](const Config& c, BuildContext& ctx) {
        auto enc = std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
        SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not a video.encoder");
        auto dec = std::dynamic_pointer_cast<FrameDecoder>(ctx.head(c.get_string("decoder"), c.locate("decoder")));
        SSLAB_CHECK(dec, c.locate("decoder"), ": head '", c.get_string("decoder"), "' is not a video.frame_decoder");
        FramePredictionOptions o;
        o.context_frames(c.get_int("context_frames")).predict_frames(c.get_int("predict_frames"));
        o.loss(c.get_string("loss")).target(c.get_string("target")).feedback(c.get_string("feedback"));
        std::shared_ptr<VideoEncoder> target;
        if (o.target() == "latent") {
          target = std::dynamic_pointer_cast<VideoEncoder>(
              ctx.ema_target(c.get_string("encoder"), EmaOptions{c.get_float("ema_momentum")}, c.locate("target")));
          SSLAB_ASSERT(target, "the EMA target of a video.encoder is not a video.encoder");
        }
        return std::make_shared<FramePrediction>(enc, dec, o, target);
      });
}

void register_evaluators(Registrar& r) {
  Schema n;
  n.string("encoder", std::string("video"), "the video.encoder");
  n.string("decoder", std::string("decoder"), "the video.frame_decoder head");
  n.integer("context_frames", int64_t{10}, "k: frames observed").min(1);
  n.integer("predict_frames", int64_t{10}, "n: frames predicted (rolled out on the model's own predictions)").min(1);
  n.integer("test_limit", int64_t{0}, "use at most this many test clips (0: all)").min(0);
  n.integer("batch_size", int64_t{32}, "clips per batch").min(1);
  r.evaluator("video.next_frame_mse",
              "next-frame MSE per frame on the test split (Moving MNIST convention) beside copy-last-frame", n,
              [](const Config& c, BuildContext&) {
                NextFrameOptions o;
                o.encoder = c.get_string("encoder");
                o.decoder = c.get_string("decoder");
                o.context_frames = c.get_int("context_frames");
                o.predict_frames = c.get_int("predict_frames");
                o.test_limit = c.get_int("test_limit");
                o.batch_size = c.get_int("batch_size");
                return std::make_shared<NextFrameEval>(o);
              });

  using P = ItemProbeOptions;
  Settings<P> p;
  p.add("encoder", &P::encoder, "encoder to evaluate (empty: the only one)");
  p.add("labels", &P::labels, "multi-hot batch key to probe");
  p.add("raw_baseline", &P::raw_baseline, "probe the clip's mean frame (raw pixels)");
  add_probe_settings(p, [](P& o) -> ProbeSettings& { return o.settings; });
  r.evaluator("video.item_probe",
              "multi-label linear probe of the clip embedding on the items' classes (mAP, recall@m) beside "
              "random-encoder and mean-frame baselines",
              p.schema(), [p](const Config& c, BuildContext&) { return std::make_shared<ItemProbe>(p.read(c)); });
}

void register_components(Registrar& r) {
  register_datasets(r);
  register_models(r);
  register_evaluators(r);
}

}  // namespace
}  // namespace sslab::video

SSLAB_PLUGIN("video", "0.1.0",
             "Video: FFmpeg clip datasets, Moving Fashion-MNIST, conv + ConvGRU encoder, frame prediction",
             sslab::video::register_components)
